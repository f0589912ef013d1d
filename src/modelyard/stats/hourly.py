"""UTC hour buckets of the last day (for the per-endpoint uptime chart)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func, literal_column
from sqlalchemy.ext.asyncio import AsyncConnection

from modelyard.store.tables import generations as g

HOURS = 24
_FORMAT = "%Y-%m-%d %H"


def utc_hour(conn: AsyncConnection) -> ColumnElement[Any]:
    """created_at's UTC hour as 'YYYY-MM-DD HH', the same text on both databases."""
    if conn.dialect.name == "postgresql":
        at_utc = func.timezone(literal_column("'UTC'"), g.c.created_at)
        return func.to_char(at_utc, literal_column("'YYYY-MM-DD HH24'"))
    return func.strftime(literal_column(f"'{_FORMAT}'"), g.c.created_at)


def hour_labels(now: datetime) -> list[str]:
    """The last HOURS UTC hours, the current one last, as 'YYYY-MM-DD HH'."""
    return [(now - timedelta(hours=n)).strftime(_FORMAT) for n in range(HOURS - 1, -1, -1)]


def first_hour(now: datetime) -> datetime:
    return datetime.strptime(hour_labels(now)[0], _FORMAT).replace(tzinfo=UTC)
