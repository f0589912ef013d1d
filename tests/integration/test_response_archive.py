"""The response archive against real databases: SQLite in a temp dir and a real PostgreSQL.

Responses are queued and written in the background; these tests read them back while
queued and once written, look at the table behind the archive's back, make the database
refuse (the table renamed away, a row held by another transaction) and move the clock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from modelyard.config import Settings
from modelyard.store import Store, StoredResponse, database_url
from modelyard.store.response_archive import ResponseArchive
from modelyard.store.response_ids import issued_at, new_response_id
from tests.pg import fresh_database

on_session_loop = pytest.mark.asyncio(loop_scope="session")

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
RETENTION = timedelta(days=30)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


# -- databases ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg_database() -> Iterator[str]:
    with fresh_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of the parametrised backend."""
    if request.param == "sqlite":
        return database_url(tmp_path, None)
    url: str = request.getfixturevalue("pg_database")
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
    finally:
        await engine.dispose()
    return url


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    opened = await Store.open(db_url)
    yield opened
    await opened.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def archive_of(store: Store, clock: Clock, **options: Any) -> ResponseArchive:
    defaults: dict[str, Any] = {"retention": RETENTION, "enabled": True, "clock": clock}
    return ResponseArchive(store, **(defaults | options))


async def stored_ids(store: Store) -> set[str]:
    """What the table holds, read behind the archive's back."""
    async with store.engine.connect() as conn:
        return {row[0] for row in await conn.execute(text("SELECT id FROM responses"))}


def response(n: int, app_id: str | None = "app_1", **fields: Any) -> StoredResponse:
    rid = f"resp_{n:04d}"
    values: dict[str, Any] = {
        "id": rid,
        "app_id": app_id,
        "key_id": None if app_id is None else "key_1",
        "created_at": T0,
        "expires_at": T0 + RETENTION,
        "model": "google/gemma-3-270m",
        "input_items": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}
        ],
        "output_items": [
            {
                "type": "message",
                "id": f"msg_{n}",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": f"answer {n}", "annotations": []}],
            }
        ],
        "response": {"id": rid, "object": "response", "status": "completed", "output": []},
        "history_items": [],
    }
    return StoredResponse(**(values | fields))


# -- save and read back ------------------------------------------------------------------


@on_session_loop
async def test_a_saved_response_reads_back_while_queued_and_once_written(
    store: Store, clock: Clock
) -> None:
    archive = archive_of(store, clock, batch_delay_s=60)  # stays queued until close
    await archive.start()
    await asyncio.sleep(0)  # the writer is idle, waiting, as in a running server
    item = response(
        1,
        # Text PostgreSQL cannot hold raw (NUL), non-ASCII, nesting, numbers of each kind.
        output_items=[{"type": "message", "content": [{"text": "a\x00b é 漢字 🙂"}]}],
        history_items=[{"role": "user", "content": "earlier"}, {"n": 1.5, "k": [None, True]}],
    )
    archive.save(item)

    assert await archive.get("app_1", item.id) is item
    assert await stored_ids(store) == set(), "save() must not write on the caller's path"
    await archive.close()
    assert await stored_ids(store) == {item.id}

    reopened = archive_of(store, clock)
    found = await reopened.get("app_1", item.id)
    assert found == item
    assert found is not None and found.created_at.utcoffset() == timedelta(0)
    assert found.conversation == [*item.history_items, *item.input_items, *item.output_items]
    assert await reopened.get("app_1", "resp_missing") is None


@on_session_loop
async def test_another_apps_response_is_not_found_queued_or_written(
    store: Store, clock: Clock
) -> None:
    archive = archive_of(store, clock, batch_delay_s=60)
    await archive.start()
    mine, admins = response(1, "app_1"), response(2, None)
    archive.save(mine)
    archive.save(admins)
    for reader in (archive, None):
        if reader is None:  # the same questions once both are in the table
            await archive.close()
            reader = archive_of(store, clock)
        assert await reader.get("app_2", mine.id) is None
        assert await reader.get(None, mine.id) is None
        assert await reader.get("app_1", admins.id) is None
        assert (await reader.get(None, admins.id)) == admins
        assert (await reader.get("app_1", mine.id)) == mine
        assert not await reader.delete("app_2", mine.id)
        assert not await reader.delete(None, mine.id)
    assert await stored_ids(store) == {mine.id, admins.id}


# -- delete ------------------------------------------------------------------------------


@on_session_loop
async def test_delete_removes_a_queued_response_and_a_written_one(
    store: Store, clock: Clock
) -> None:
    archive = archive_of(store, clock, batch_delay_s=0.0)
    await archive.start()
    written = response(1)
    archive.save(written)
    for _ in range(100):
        if await stored_ids(store):
            break
        await asyncio.sleep(0.01)
    assert await stored_ids(store) == {written.id}

    await archive.close()  # a writer that waits: the next one stays queued
    archive = archive_of(store, clock, batch_delay_s=60)
    await archive.start()
    await asyncio.sleep(0)
    queued = response(2)
    archive.save(queued)

    assert await archive.delete("app_1", queued.id)
    assert await archive.get("app_1", queued.id) is None
    assert await archive.delete("app_1", written.id)
    assert await archive.get("app_1", written.id) is None
    assert not await archive.delete("app_1", written.id)
    assert not await archive.delete("app_1", queued.id)
    await archive.close()
    assert await stored_ids(store) == set()


@on_session_loop
async def test_a_response_deleted_while_its_batch_waits_to_be_written_is_not_written(
    store: Store, clock: Clock
) -> None:
    """The batch is taken from the queue while a delete holds the archive; a delete of one
    of its responses queued behind that must keep the batch from writing it afterwards."""
    archive = archive_of(store, clock, batch_delay_s=0.0)
    await archive.start()
    first, second = response(1), response(2)
    archive.save(first)
    await archive.close()
    archive = archive_of(store, clock, batch_delay_s=0.0)
    await archive.start()

    blocker = create_async_engine(str(store.engine.url.render_as_string(hide_password=False)))
    try:
        async with blocker.connect() as conn:
            # Another transaction holds `first` (SQLite: the database) for writing.
            await conn.execute(
                text("UPDATE responses SET model = model WHERE id = :id"), {"id": first.id}
            )
            delete_first = asyncio.ensure_future(archive.delete("app_1", first.id))
            await asyncio.sleep(0.1)
            assert not delete_first.done(), "the delete should wait for the row"
            archive.save(second)
            delete_second = asyncio.ensure_future(archive.delete("app_1", second.id))
            await asyncio.sleep(0.3)  # the writer has taken `second` and waits its turn
            assert await archive.get("app_1", second.id) == second
            await conn.rollback()
        assert await asyncio.wait_for(delete_first, 10)
        assert await asyncio.wait_for(delete_second, 10)
    finally:
        await blocker.dispose()
    assert await archive.get("app_1", second.id) is None
    await archive.close()
    assert await stored_ids(store) == set()


# -- expiry ------------------------------------------------------------------------------


@on_session_loop
async def test_expired_responses_are_not_found_and_purging_deletes_only_them(
    store: Store, clock: Clock
) -> None:
    archive = archive_of(store, clock, batch_delay_s=60)
    await archive.start()
    await asyncio.sleep(0)
    short = [response(n, expires_at=T0 + timedelta(hours=1)) for n in range(1, 4)]
    kept = response(9)
    for item in (*short, kept):
        archive.save(item)

    clock.now = T0 + timedelta(hours=1)  # expiry is exclusive: gone at expires_at
    assert await archive.get("app_1", short[0].id) is None  # queued, expired
    assert not await archive.delete("app_1", short[1].id)
    await archive.close()

    archive = archive_of(store, clock)
    assert await archive.get("app_1", short[0].id) is None  # written, expired
    assert await archive.get("app_1", kept.id) == kept
    assert await archive.purge_expired() == 3
    assert await stored_ids(store) == {kept.id}
    assert await archive.purge_expired() == 0

    clock.now = T0 + RETENTION
    assert await archive.get("app_1", kept.id) is None
    assert await archive.purge_expired() == 1
    assert await stored_ids(store) == set()


@on_session_loop
async def test_purging_goes_in_batches_and_runs_by_itself(store: Store, clock: Clock) -> None:
    await store.insert_responses(
        [response(n, expires_at=T0 - timedelta(seconds=n)) for n in range(7)]
    )
    assert await store.purge_responses(T0, batch=3) == 7
    assert await stored_ids(store) == set()

    await store.insert_responses([response(1, expires_at=T0), response(2)])
    archive = archive_of(store, clock, purge_every_s=0.05)
    await archive.start()
    for _ in range(100):
        if await stored_ids(store) == {"resp_0002"}:
            break
        await asyncio.sleep(0.02)
    await archive.close()
    assert await stored_ids(store) == {"resp_0002"}


# -- the writer: draining, retrying, what cannot be written ------------------------------


@on_session_loop
async def test_close_writes_everything_still_queued(store: Store, clock: Clock) -> None:
    archive = archive_of(store, clock, batch_delay_s=60)
    await archive.start()
    await asyncio.sleep(0)
    items = [response(n) for n in range(250)]  # more than one batch
    for item in items:
        archive.save(item)
    await asyncio.sleep(0.05)
    assert archive.queue_depth == 250
    await asyncio.wait_for(archive.close(), 30)
    assert archive.queue_depth == 0
    assert await stored_ids(store) == {item.id for item in items}


@on_session_loop
async def test_a_failed_write_is_retried_not_dropped(store: Store, clock: Clock) -> None:
    archive = archive_of(store, clock, batch_delay_s=0.0, max_retry_delay_s=0.05)
    await archive.start()
    async with store.engine.begin() as conn:  # the table is away: every insert fails
        await conn.execute(text("ALTER TABLE responses RENAME TO responses_away"))
    items = [response(n) for n in range(5)]
    for item in items:
        archive.save(item)
    await asyncio.sleep(0.4)  # several failed attempts
    for item in items:  # still held (queued, or in the attempt under way)
        assert await archive.get("app_1", item.id) == item
    async with store.engine.begin() as conn:
        await conn.execute(text("ALTER TABLE responses_away RENAME TO responses"))
    await asyncio.wait_for(archive.close(), 10)
    assert await stored_ids(store) == {item.id for item in items}


@on_session_loop
async def test_a_response_json_cannot_hold_is_left_out_without_holding_back_the_rest(
    store: Store, clock: Clock
) -> None:
    archive = archive_of(store, clock, batch_delay_s=60)
    await archive.start()
    await asyncio.sleep(0)
    archive.save(response(1))
    archive.save(response(2, response={"id": "resp_0002", "huge": 2**70}))
    archive.save(response(3))
    await asyncio.wait_for(archive.close(), 10)
    assert await stored_ids(store) == {"resp_0001", "resp_0003"}


@on_session_loop
async def test_a_batch_written_twice_keeps_the_first_copy(store: Store) -> None:
    """A retry after a commit whose answer was lost must not fail for ever on the key."""
    first = response(1)
    await store.insert_responses([first])
    await store.insert_responses([response(1, model="other/model"), response(2)])
    assert await stored_ids(store) == {"resp_0001", "resp_0002"}
    again = await store.get_response("app_1", first.id, T0)
    assert again is not None and again.model == first.model


# -- turned off --------------------------------------------------------------------------


@on_session_loop
async def test_a_disabled_archive_keeps_and_serves_nothing_but_still_deletes(
    store: Store, clock: Clock
) -> None:
    earlier = response(1)
    await store.insert_responses([earlier])  # kept before it was turned off
    archive = archive_of(store, clock, enabled=False)
    await archive.start()
    archive.save(response(2))
    assert await archive.get("app_1", "resp_0002") is None
    assert await archive.get("app_1", earlier.id) is None
    assert await archive.delete("app_1", earlier.id)
    await archive.close()
    assert await stored_ids(store) == set()


def test_settings_read_storing_and_retention_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MODELYARD_STORE_RESPONSES", raising=False)
    monkeypatch.delenv("MODELYARD_RESPONSE_RETENTION_DAYS", raising=False)
    defaults = Settings.from_env()
    assert defaults.store_responses is True and defaults.response_retention_days == 30
    monkeypatch.setenv("MODELYARD_STORE_RESPONSES", "0")
    monkeypatch.setenv("MODELYARD_RESPONSE_RETENTION_DAYS", "0.5")
    settings = Settings.from_env()
    assert settings.store_responses is False and settings.response_retention_days == 0.5
    for refused in ("0", "-1", "nan"):
        monkeypatch.setenv("MODELYARD_RESPONSE_RETENTION_DAYS", refused)
        with pytest.raises(ValueError, match="MODELYARD_RESPONSE_RETENTION_DAYS"):
            Settings.from_env()


# -- two processes on one database -------------------------------------------------------


@on_session_loop
async def test_another_process_finds_a_response_just_made_once_it_is_written(
    store: Store, clock: Clock
) -> None:
    """Worker A answered and queued the response; worker B is asked for it at once. B waits
    for a fresh id (it may be in A's queue) but not for an old or foreign-shaped one."""
    writer = archive_of(store, clock, batch_delay_s=0.3)
    reader = archive_of(store, clock, settle_s=2.0)
    await writer.start()
    await asyncio.sleep(0)  # the writer is idle, waiting, as in a running server
    item = response(1, id=new_response_id())
    writer.save(item)
    started = time.monotonic()
    found = await reader.get("app_1", item.id)
    waited = time.monotonic() - started
    assert found is not None and found.id == item.id
    assert waited >= 0.2, "B cannot have read it before A wrote it"
    # A delete sent to B for a response still queued in A waits for it too.
    await asyncio.sleep(0.05)
    other = response(2, id=new_response_id())
    writer.save(other)
    assert await reader.delete("app_1", other.id) is True
    assert await reader.get("app_1", other.id) is None
    await writer.close()

    old = new_response_id(now_s=time.time() - 3600)
    for missing in (old, "resp_not-made-here"):
        started = time.monotonic()
        assert await reader.get("app_1", missing) is None
        assert time.monotonic() - started < 0.5, "an id that is not fresh is no reason to wait"


def test_response_ids_carry_the_time_they_were_made() -> None:
    made = new_response_id(now_s=1_800_000_000.25)
    assert made.startswith("resp_") and len(made) == len("resp_") + 48
    assert issued_at(made) == 1_800_000_000.25
    assert issued_at("resp_zzzz") is None and issued_at("msg_0123456789abcdef") is None
    assert new_response_id() != new_response_id()
