"""Batches of rows in a few statements, however many rows they hold (the ledger's
generations and the stored responses).

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

Rows come in as the column dicts of `store/rows.py`; how each value is stored is derived
from the table's column types with SQLAlchemy's own bind processors for the engine's
dialect (`Money`, `UtcDateTime`, booleans), so nothing here knows a table's columns.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

import orjson
from sqlalchemy import JSON, Column, Dialect, String, Table, text
from sqlalchemy.ext.asyncio import AsyncEngine

from modelyard.store.migrate import SQLITE_BUSY_TIMEOUT_MS

Encode = Callable[[Any], Any]


@dataclass(frozen=True)
class BulkTable:
    """A table that takes bulk inserts. `skip_existing`: a row whose primary key is already
    stored is left as it is (a batch retried after a commit whose answer was lost)."""

    table: Table
    skip_existing: bool = False
    columns: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        # Plain str: orjson takes no str subclass (SQLAlchemy's quoted_name) as a key.
        names = tuple(str.__str__(c.name) for c in self.table.columns)
        object.__setattr__(self, "columns", names)

    @property
    def name(self) -> str:
        return self.table.name

    def conflict_clause(self) -> str:
        if not self.skip_existing:
            return ""
        keys = ", ".join(c.name for c in self.table.primary_key.columns)
        return f" ON CONFLICT ({keys}) DO NOTHING"


class BulkSink(Protocol):
    async def insert(self, table: BulkTable, rows: Sequence[Mapping[str, Any]]) -> None: ...

    async def close(self) -> None: ...


def open_sink(engine: AsyncEngine) -> BulkSink:
    """The bulk writer for the engine's database."""
    if engine.dialect.name == "sqlite":
        path = engine.url.database
        if not path or path == ":memory:":
            raise ValueError("the ledger needs an SQLite file, not an in-memory database")
        return SqliteSink(path, engine.dialect)
    return PostgresSink(engine)


def clean_text(value: str | None) -> str | None:
    # PostgreSQL text cannot hold NUL: one would fail its batch, and every retry of it,
    # forever. Both databases get U+FFFD instead, so they keep the same text.
    return value.replace("\x00", "\ufffd") if value and "\x00" in value else value


def _clean_nested(value: Any) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, list):
        return [_clean_nested(v) for v in value]
    if isinstance(value, dict):
        return {k: _clean_nested(v) for k, v in value.items()}
    return value


def json_text(value: Any) -> str:
    """A JSON column's value as JSON text, its strings' NULs replaced as for text columns."""
    dumped = orjson.dumps(value).decode()
    # orjson writes NUL as \u0000: only then is the value walked.
    return orjson.dumps(_clean_nested(value)).decode() if "\\u0000" in dumped else dumped


def _encoders(table: BulkTable, dialect: Dialect, *, json_as_text: bool) -> list[Encode | None]:
    """Per column, in table order: how a value is stored (None: as it is)."""

    def encoder(column: Column[Any]) -> Encode | None:
        if isinstance(column.type, JSON):
            # PostgreSQL's are cleaned in the batch's one JSON payload (PostgresSink).
            return json_text if json_as_text else None
        if isinstance(column.type, String):  # Text too
            return clean_text
        return column.type.dialect_impl(dialect).bind_processor(dialect)

    return [encoder(column) for column in table.table.columns]


def _encode(
    rows: Sequence[Mapping[str, Any]], names: Sequence[str], encoders: Sequence[Encode | None]
) -> list[list[Any]]:
    pairs = list(zip(names, encoders, strict=True))
    return [[row[n] if e is None else e(row[n]) for n, e in pairs] for row in rows]


# -- SQLite ---------------------------------------------------------------------------------
# Statement sizes, largest first: a batch of n rows is cut into at most a few of each.
SQLITE_CHUNKS = (256, 64, 16, 4, 1)


def chunk_sizes(count: int) -> list[int]:
    """`count` as a sum of SQLITE_CHUNKS sizes, largest first."""
    sizes = []
    for size in SQLITE_CHUNKS:
        while count >= size:
            sizes.append(size)
            count -= size
    return sizes


def _sqlite_inserts(table: BulkTable) -> dict[int, str]:
    placeholders = "(" + ", ".join("?" * len(table.columns)) + ")"
    head = f"INSERT INTO {table.name} ({', '.join(table.columns)}) VALUES "
    tail = table.conflict_clause()
    return {size: head + ", ".join([placeholders] * size) + tail for size in SQLITE_CHUNKS}


class SqliteSink:
    """Writes batches through its own connection, on its own thread."""

    def __init__(self, path: str, dialect: Dialect) -> None:
        self._path = path
        self._dialect = dialect
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bulk-sqlite")
        self._connection: sqlite3.Connection | None = None
        self._prepared: dict[str, tuple[list[Encode | None], dict[int, str]]] = {}

    def _prepare(self, table: BulkTable) -> tuple[list[Encode | None], dict[int, str]]:
        prepared = self._prepared.get(table.name)
        if prepared is None:
            encoders = _encoders(table, self._dialect, json_as_text=True)
            prepared = self._prepared[table.name] = (encoders, _sqlite_inserts(table))
        return prepared

    async def insert(self, table: BulkTable, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        encoders, statements = self._prepare(table)
        values = _encode(rows, table.columns, encoders)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self._write, statements, values)

    def _write(self, statements: dict[int, str], rows: list[list[Any]]) -> None:
        if self._connection is None:
            connection = sqlite3.connect(
                self._path, isolation_level=None, cached_statements=len(SQLITE_CHUNKS) * 4
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
                connection.execute(statements[size], [v for row in chunk for v in row])
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
def _decimal_text(value: Any) -> str:
    # NUMERIC takes the exact decimal text (Money has already rounded it).
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class PostgresSink:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._prepared: dict[str, tuple[list[Encode | None], Any]] = {}

    def _prepare(self, table: BulkTable) -> tuple[list[Encode | None], Any]:
        prepared = self._prepared.get(table.name)
        if prepared is None:
            columns = ", ".join(table.columns)
            statement = text(
                f"INSERT INTO {table.name} ({columns}) SELECT {columns} "
                f"FROM json_populate_recordset(NULL::{table.name}, CAST(:rows AS json))"
                + table.conflict_clause()
            )
            encoders = _encoders(table, self._engine.dialect, json_as_text=False)
            prepared = self._prepared[table.name] = (encoders, statement)
        return prepared

    async def insert(self, table: BulkTable, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        encoders, statement = self._prepare(table)
        records = [
            dict(zip(table.columns, values, strict=True))
            for values in _encode(rows, table.columns, encoders)
        ]
        payload = orjson.dumps(records, default=_decimal_text).decode()
        if "\\u0000" in payload:  # a NUL inside a JSON column: only then is the batch walked
            payload = orjson.dumps(_clean_nested(records), default=_decimal_text).decode()
        async with self._engine.begin() as conn:
            await conn.execute(statement, {"rows": payload})

    async def close(self) -> None:
        """Nothing of its own: it writes through the store's engine."""
