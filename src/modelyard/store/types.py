"""Column types that behave the same on SQLite and PostgreSQL: exact money, UTC timestamps,
and the UTC day or hour of a timestamp column in SQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, DateTime, Dialect, Numeric, func, literal_column
from sqlalchemy.types import TypeDecorator, TypeEngine

MONEY_SCALE = 10
_QUANTUM = Decimal(1).scaleb(-MONEY_SCALE)


def exact_money(value: Decimal) -> Decimal:
    """Dollars rounded as PostgreSQL rounds a cast to NUMERIC(20, 10): half away from zero."""
    return Decimal(value).quantize(_QUANTUM, rounding=ROUND_HALF_UP)


def money_units(value: Decimal) -> int:
    """Dollars as SQLite keeps them: an integer count of 1e-10 dollars."""
    return int(exact_money(value).scaleb(MONEY_SCALE))


def as_utc(value: datetime) -> datetime:
    """`value` in UTC; a naive datetime is refused (the store cannot know its zone)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value!r}: pass a timezone-aware datetime")
    return value.astimezone(UTC)


class Money(TypeDecorator[Decimal]):
    """US dollars as an exact Decimal with 10 decimal places.

    PostgreSQL stores NUMERIC(20, 10). SQLite has no exact decimal (NUMERIC affinity turns
    values into REAL), so there the column holds an integer count of 1e-10 dollars; SUM()
    over it stays exact and this type scales results back.
    """

    impl = Numeric(20, MONEY_SCALE, asdecimal=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(20, MONEY_SCALE, asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        return money_units(value) if dialect.name == "sqlite" else exact_money(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return Decimal(int(value)).scaleb(-MONEY_SCALE)
        return Decimal(value).quantize(_QUANTUM)


def sqlite_timestamp(value: datetime | None) -> str | None:
    """A timestamp as SQLite keeps it: UTC text without an offset, so text order is time
    order and comparisons with `since` work."""
    if value is None:
        return None
    return as_utc(value).replace(tzinfo=None).isoformat(" ", "microseconds")


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime, stored in UTC and always read back aware in UTC.

    Naive datetimes are refused: the store cannot know which zone they meant.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        # PostgreSQL's (SQLite's text comes from bind_processor).
        return None if value is None else as_utc(value)

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)
        # The text SQLAlchemy's SQLite DATETIME writes, made directly: less than half the
        # time of its general formatter, for every ledger row (store/bulk.py).
        return sqlite_timestamp

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utc_day(column: ColumnElement[datetime], dialect: str) -> ColumnElement[Any]:
    """`column`'s UTC day as 'YYYY-MM-DD', the same text on both databases."""
    return _utc_text(column, dialect, "YYYY-MM-DD", "%Y-%m-%d")


def utc_hour(column: ColumnElement[datetime], dialect: str) -> ColumnElement[Any]:
    """`column`'s UTC hour as 'YYYY-MM-DD HH', the same text on both databases."""
    return _utc_text(column, dialect, "YYYY-MM-DD HH24", "%Y-%m-%d %H")


def _utc_text(
    column: ColumnElement[datetime], dialect: str, postgres: str, sqlite: str
) -> ColumnElement[Any]:
    # Literals, not bind parameters: PostgreSQL must see one expression in SELECT and
    # GROUP BY. SQLite holds UTC text "YYYY-MM-DD HH:MM:SS…" (UtcDateTime).
    if dialect == "postgresql":
        at_utc = func.timezone(literal_column("'UTC'"), column)
        return func.to_char(at_utc, literal_column(f"'{postgres}'"))
    return func.strftime(literal_column(f"'{sqlite}'"), column)
