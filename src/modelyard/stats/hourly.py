"""UTC hour buckets of the last day (for the per-endpoint uptime chart)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncConnection

from modelyard.store.tables import generations as g
from modelyard.store.types import utc_hour as _utc_hour

HOURS = 24
_FORMAT = "%Y-%m-%d %H"


def utc_hour(conn: AsyncConnection) -> ColumnElement[Any]:
    """created_at's UTC hour as 'YYYY-MM-DD HH' (store/types.py `utc_hour`)."""
    return _utc_hour(g.c.created_at, conn.dialect.name)


def hour_labels(now: datetime) -> list[str]:
    """The last HOURS UTC hours, the current one last, as 'YYYY-MM-DD HH'."""
    return [(now - timedelta(hours=n)).strftime(_FORMAT) for n in range(HOURS - 1, -1, -1)]


def first_hour(now: datetime) -> datetime:
    return datetime.strptime(hour_labels(now)[0], _FORMAT).replace(tzinfo=UTC)
