"""The batch writer: rows are never lost or reordered, and close() drains the queue."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

from modelyard.ledger.writer import LedgerWriter
from modelyard.store.records import Generation


def row(n: int) -> Generation:
    return Generation(
        id=f"gen-{n}",
        created_at=datetime.now(UTC),
        app_id=None,
        key_id=None,
        model="m/x",
        provider="p",
        endpoint="p/m/x",
        status=200,
    )


class FlakyTable:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.rows: list[str] = []
        self.batches: list[int] = []

    async def insert(self, rows: Sequence[Generation]) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("database away")
        self.batches.append(len(rows))
        self.rows.extend(r.id for r in rows)


async def test_rows_arriving_together_are_written_in_one_batch() -> None:
    table = FlakyTable(0)
    writer = LedgerWriter(table.insert, max_delay_s=0.05)
    writer.start()
    for n in range(30):
        writer.record(row(n))
    await asyncio.sleep(0.2)
    assert table.batches == [30]
    await writer.close()
    assert writer.written == 30


async def test_failed_writes_are_retried_in_order_without_loss() -> None:
    table = FlakyTable(failures=3)
    writer = LedgerWriter(table.insert, max_delay_s=0.0, max_retry_delay_s=0.01)
    writer.start()
    for n in range(5):
        writer.record(row(n))
    await asyncio.sleep(0.01)
    for n in range(5, 8):
        writer.record(row(n))
    await writer.close()
    assert table.rows == [f"gen-{n}" for n in range(8)]


async def test_close_writes_what_is_still_queued() -> None:
    table = FlakyTable(0)
    writer = LedgerWriter(table.insert, max_delay_s=60)
    writer.start()
    await asyncio.sleep(0)  # the writer is idle, waiting for rows, as in a running server
    for n in range(10):
        writer.record(row(n))
    await asyncio.sleep(0.05)
    assert table.rows == [] and writer.queue_depth == 10
    assert writer.pending("gen-3") is not None
    await asyncio.wait_for(writer.close(), 5)
    assert len(table.rows) == 10 and writer.queue_depth == 0


async def test_batches_are_capped() -> None:
    table = FlakyTable(0)
    writer = LedgerWriter(table.insert, batch_size=4, max_delay_s=0.0)
    writer.start()
    for n in range(10):
        writer.record(row(n))
    await writer.close()
    assert max(table.batches) <= 4 and sum(table.batches) == 10


async def test_a_full_queue_holds_new_requests_back_until_the_writer_catches_up() -> None:
    table = FlakyTable(failures=2)  # the database is away for two attempts
    writer = LedgerWriter(
        table.insert, batch_size=4, max_delay_s=0.0, max_retry_delay_s=0.05, max_pending=6
    )
    writer.start()
    await asyncio.wait_for(writer.room(), 1)  # empty: room at once
    for n in range(6):
        writer.record(row(n))
    admitted = asyncio.ensure_future(writer.room())
    await asyncio.sleep(0.01)
    assert not admitted.done(), "a seventh request must wait while six rows are unwritten"
    await asyncio.wait_for(admitted, 5)
    assert writer.queue_depth < 6
    await writer.close()
    assert table.rows == [f"gen-{n}" for n in range(6)]
