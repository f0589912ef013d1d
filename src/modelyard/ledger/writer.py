"""Writes rows in batches, off the request path: the ledger's, and the stored responses'.

Requests `record()` a row (a non-blocking append); one background task takes whatever has
accumulated, up to `batch_size` rows, and inserts it in one transaction. No request waits
on the database. `close()` (called from the lifespan on SIGTERM) drains the queue, so a
completed request's row is never lost on an orderly shutdown. If the database fails, the
batch is kept and retried with backoff rather than dropped.

The queue is bounded: past `max_pending` rows (the database is down, or slower than the
traffic) `room()` makes new requests wait until the writer catches up, so memory stays
bounded and no row is dropped; requests already admitted still record theirs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, Protocol, TypeVar

from modelyard.store.records import Generation

log = logging.getLogger(__name__)


class HasId(Protocol):
    @property
    def id(self) -> str: ...


RowT = TypeVar("RowT", bound=HasId)
InsertRows = Callable[[Sequence[RowT]], Awaitable[None]]


class BatchWriter(Generic[RowT]):
    def __init__(
        self,
        insert: InsertRows[RowT],
        *,
        batch_size: int = 500,
        max_delay_s: float = 0.05,
        max_retry_delay_s: float = 5.0,
        max_pending: int = 100_000,
        name: str = "ledger",
    ) -> None:
        self._insert = insert
        self._batch_size = batch_size
        self._max_delay_s = max_delay_s
        self._max_retry_delay_s = max_retry_delay_s
        self._pending: deque[RowT] = deque()
        self._in_flight: list[RowT] = []
        self._wake = asyncio.Event()
        self._max_pending = max_pending
        self._room = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._name = name
        self.written = 0

    @property
    def queue_depth(self) -> int:
        return len(self._pending)

    def pending(self, row_id: str) -> RowT | None:
        """A row still waiting to be written (so it can be read back at once)."""
        for row in (*self._in_flight, *self._pending):
            if row.id == row_id:
                return row
        return None

    def writing(self, row_id: str) -> bool:
        """Whether the row is in the batch being inserted now."""
        return any(row.id == row_id for row in self._in_flight)

    def discard(self, row_id: str) -> RowT | None:
        """Take a queued row out before it is written (not one in the batch being inserted)."""
        for row in self._pending:
            if row.id == row_id:
                self._pending.remove(row)
                return row
        return None

    async def room(self) -> None:
        """Return once the queue is below its bound (at once, nearly always)."""
        while len(self._pending) >= self._max_pending:
            self._room.clear()
            await self._room.wait()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"{self._name}-writer")

    def record(self, row: RowT) -> None:
        self._pending.append(row)
        if len(self._pending) == 1 or len(self._pending) >= self._batch_size:
            self._wake.set()

    async def close(self) -> None:
        """Write everything still queued, then stop."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def _run(self) -> None:
        retry_delay = 0.1
        while True:
            if not self._pending:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                # Let a burst of requests land in the same batch (close() cuts the wait short).
                if not self._closing:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self._max_delay_s)
            batch = [
                self._pending.popleft() for _ in range(min(self._batch_size, len(self._pending)))
            ]
            self._in_flight = batch
            try:
                await self._insert(batch)
            except Exception:
                # Keep the rows (in order) and try again: losing them would lose billing.
                log.exception("%s write of %d rows failed; retrying", self._name, len(batch))
                self._pending.extendleft(reversed(batch))
                self._in_flight = []
                await asyncio.sleep(retry_delay)
                retry_delay = min(retry_delay * 2, self._max_retry_delay_s)
                continue
            self._in_flight = []
            retry_delay = 0.1
            self.written += len(batch)
            if len(self._pending) < self._max_pending:
                self._room.set()


# The generations ledger: the writer every request's row goes through.
LedgerWriter = BatchWriter[Generation]
