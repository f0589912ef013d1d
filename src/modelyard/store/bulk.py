"""Ledger batches in a few statements, however many rows they hold.

Inserting row by row is what made the ledger fall behind under load (106,000 rows queued
in the 200,000-request soak of `make bench`): SQLite's `executemany` releases and re-takes
the GIL once per row, and a thread that wants the GIL back while the event loop is busy
waits for it, each time.

SQLite: multi-row `INSERT … VALUES (…), (…), …` statements of a few fixed sizes (so each
is prepared once and cached), all of a batch in one transaction, on a connection and a
thread of the writer's own, apart from the aiosqlite pool of the other queries. A batch
costs about one GIL hand-off per statement. (One `INSERT … SELECT … FROM json_each(?)`
per batch took fewer still, but SQLite's JSON functions cost it 32 µs a row against 18.)

PostgreSQL: `json_populate_recordset` turns one JSON parameter into typed rows on the
server, so the event loop serialises the batch (orjson) and makes one round trip, instead
of SQLAlchemy processing every parameter of every row.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from modelyard.store.migrate import SQLITE_BUSY_TIMEOUT_MS
from modelyard.store.records import Generation
from modelyard.store.tables import generations
from modelyard.store.types import as_utc, exact_money, money_units

COLUMNS = [column.name for column in generations.columns]
_COLUMN_LIST = ", ".join(COLUMNS)


class GenerationSink(Protocol):
    async def insert(self, rows: Sequence[Generation]) -> None: ...

    async def close(self) -> None: ...


def open_sink(engine: AsyncEngine) -> GenerationSink:
    """The bulk writer for the engine's database."""
    if engine.dialect.name == "sqlite":
        path = engine.url.database
        if not path or path == ":memory:":
            raise ValueError("the ledger needs an SQLite file, not an in-memory database")
        return SqliteSink(path)
    return PostgresSink(engine)


def _clean(value: str | None) -> str | None:
    # PostgreSQL text cannot hold NUL: one would fail its batch, and every retry of it,
    # forever. Both databases get U+FFFD instead, so they keep the same text.
    return value.replace("\x00", "\ufffd") if value and "\x00" in value else value


def _attempts(row: Generation) -> list[dict[str, Any]]:
    return [
        {
            "provider": a.provider,
            "status": a.status,
            "error": _clean(a.error),
            "duration_ms": a.duration_ms,
        }
        for a in row.attempts
    ]


# -- SQLite ---------------------------------------------------------------------------------
# Statement sizes, largest first: a batch of n rows is cut into at most a few of each.
SQLITE_CHUNKS = (256, 64, 16, 4, 1)
_ROW_PLACEHOLDERS = "(" + ", ".join("?" * len(COLUMNS)) + ")"
_SQLITE_INSERTS = {
    size: f"INSERT INTO generations ({_COLUMN_LIST}) VALUES "
    + ", ".join([_ROW_PLACEHOLDERS] * size)
    for size in SQLITE_CHUNKS
}


def chunk_sizes(count: int) -> list[int]:
    """`count` as a sum of SQLITE_CHUNKS sizes, largest first."""
    sizes = []
    for size in SQLITE_CHUNKS:
        while count >= size:
            sizes.append(size)
            count -= size
    return sizes


def sqlite_values(row: Generation) -> list[Any]:
    """One row as SQLite stores it, in COLUMNS order: timestamps as SQLAlchemy's UTC text,
    money as integer 1e-10 dollars, booleans as 0/1, JSON columns as JSON text."""
    at = as_utc(row.created_at)
    return [
        row.id,
        f"{at:%Y-%m-%d %H:%M:%S}.{at.microsecond:06d}",
        row.app_id,
        row.key_id,
        row.model,
        row.provider,
        row.endpoint,
        row.status,
        _clean(row.error),
        row.tokens_prompt,
        row.tokens_completion,
        row.tokens_cached,
        row.tokens_cache_write,
        row.tokens_reasoning,
        money_units(row.cost),
        row.latency_ms,
        row.generation_time_ms,
        int(row.streamed),
        int(row.cancelled),
        row.finish_reason,
        row.native_finish_reason,
        int(row.is_byok),
        _clean(row.http_referer),
        _clean(row.x_title),
        orjson.dumps(row.params).decode(),
        orjson.dumps(_attempts(row)).decode(),
        _clean(row.prompt_text),
        _clean(row.output_text),
        row.api,
    ]


class SqliteSink:
    """Writes batches through its own connection, on its own thread."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-sqlite")
        self._connection: sqlite3.Connection | None = None

    async def insert(self, rows: Sequence[Generation]) -> None:
        if not rows:
            return
        values = [sqlite_values(row) for row in rows]
        await asyncio.get_running_loop().run_in_executor(self._thread, self._write, values)

    def _write(self, rows: list[list[Any]]) -> None:
        if self._connection is None:
            connection = sqlite3.connect(
                self._path, isolation_level=None, cached_statements=len(SQLITE_CHUNKS) * 2
            )
            connection.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            self._connection = connection
        connection = self._connection
        connection.execute("BEGIN IMMEDIATE")
        try:
            start = 0
            for size in chunk_sizes(len(rows)):
                chunk = rows[start : start + size]
                start += size
                connection.execute(_SQLITE_INSERTS[size], [v for row in chunk for v in row])
            connection.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                connection.execute("ROLLBACK")
            raise

    def _close_connection(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._thread, self._close_connection)
        self._thread.shutdown(wait=True)


# -- PostgreSQL -----------------------------------------------------------------------------
_POSTGRES_INSERT = text(
    f"INSERT INTO generations ({_COLUMN_LIST}) SELECT {_COLUMN_LIST} "
    "FROM json_populate_recordset(NULL::generations, CAST(:rows AS json))"
)


def postgres_record(row: Generation) -> dict[str, Any]:
    """One row as a JSON object json_populate_recordset casts column by column; money goes
    as a string so that NUMERIC gets it exactly."""
    return {
        "id": row.id,
        "created_at": as_utc(row.created_at).isoformat(),
        "app_id": row.app_id,
        "key_id": row.key_id,
        "model": row.model,
        "provider": row.provider,
        "endpoint": row.endpoint,
        "status": row.status,
        "error": _clean(row.error),
        "tokens_prompt": row.tokens_prompt,
        "tokens_completion": row.tokens_completion,
        "tokens_cached": row.tokens_cached,
        "tokens_cache_write": row.tokens_cache_write,
        "tokens_reasoning": row.tokens_reasoning,
        "cost": str(exact_money(row.cost)),
        "latency_ms": row.latency_ms,
        "generation_time_ms": row.generation_time_ms,
        "streamed": row.streamed,
        "cancelled": row.cancelled,
        "finish_reason": row.finish_reason,
        "native_finish_reason": row.native_finish_reason,
        "is_byok": row.is_byok,
        "http_referer": _clean(row.http_referer),
        "x_title": _clean(row.x_title),
        "params": row.params,
        "attempts": _attempts(row),
        "prompt_text": _clean(row.prompt_text),
        "output_text": _clean(row.output_text),
        "api": row.api,
    }


class PostgresSink:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def insert(self, rows: Sequence[Generation]) -> None:
        if not rows:
            return
        payload = orjson.dumps([postgres_record(row) for row in rows]).decode()
        async with self._engine.begin() as conn:
            await conn.execute(_POSTGRES_INSERT, {"rows": payload})

    async def close(self) -> None:
        """Nothing of its own: it writes through the store's engine."""
