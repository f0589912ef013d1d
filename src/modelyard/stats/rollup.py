"""Daily roll-ups of one model's ledger rows: tokens and requests per day, app and title.

A finished UTC day never changes, so it is summed once (an index range of the model) and kept
in memory; only the current day (and a short grace period after midnight, for rows still in
the ledger writer's queue) is summed on each call.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from modelyard.store.tables import generations as g
from modelyard.store.types import utc_day

HISTORY_DAYS = 30
GRACE = timedelta(minutes=2)


@dataclass(frozen=True, slots=True)
class DayUsage:
    """One group of a day's rows of one model."""

    day: date
    app_id: str | None
    x_title: str | None
    http_referer: str | None
    requests: int
    tokens: int  # prompt + completion


async def _sum_range(
    conn: AsyncConnection, model_id: str, start: datetime, end: datetime
) -> list[DayUsage]:
    day = utc_day(g.c.created_at, conn.dialect.name).label("day")
    keys = (g.c.app_id, g.c.x_title, g.c.http_referer)
    query = (
        select(
            day,
            *keys,
            func.count().label("requests"),
            func.sum(g.c.tokens_prompt + g.c.tokens_completion).label("tokens"),
        )
        .where(g.c.model == model_id, g.c.created_at >= start, g.c.created_at < end)
        .group_by(day, *keys)
    )
    return [
        DayUsage(
            day=date.fromisoformat(str(r["day"])),
            app_id=r["app_id"],
            x_title=r["x_title"],
            http_referer=r["http_referer"],
            requests=int(r["requests"]),
            tokens=int(r["tokens"] or 0),
        )
        for r in (await conn.execute(query)).mappings()
    ]


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


@dataclass(slots=True)
class _Closed:
    until: datetime  # every day before this instant is summed
    rows: list[DayUsage]


class DailyRollup:
    """Per-model daily usage over the last HISTORY_DAYS days, closed days cached."""

    def __init__(self) -> None:
        self._closed: dict[str, _Closed] = {}
        self._locks: dict[str, asyncio.Lock] = {}  # one per model: models never wait on each other

    async def usage(self, conn: AsyncConnection, model_id: str, now: datetime) -> list[DayUsage]:
        first = _midnight((now - timedelta(days=HISTORY_DAYS - 1)).date())
        closed_until = _midnight((now - GRACE).date())
        async with self._locks.setdefault(model_id, asyncio.Lock()):
            cached = self._closed.get(model_id)
            if cached is None or cached.until < closed_until:
                start = first if cached is None else max(first, cached.until)
                added = await _sum_range(conn, model_id, start, closed_until)
                kept = [] if cached is None else cached.rows
                cached = _Closed(closed_until, [*kept, *added])
                self._closed[model_id] = cached
        live = await _sum_range(conn, model_id, closed_until, now + timedelta(seconds=1))
        return [u for u in cached.rows if u.day >= first.date()] + live
