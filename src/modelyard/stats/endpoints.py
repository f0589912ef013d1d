"""Per-endpoint uptime, latency and throughput of one model, from its recent ledger rows.

Both queries read a time range of one model through ix_generations_model_created.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from modelyard.stats.hourly import HOURS, first_hour, hour_labels, utc_hour
from modelyard.stats.percentiles import Percentiles, percentiles
from modelyard.store.tables import generations as g

UPTIME_WINDOWS = {"5m": timedelta(minutes=5), "30m": timedelta(minutes=30), "1d": timedelta(days=1)}
PERF_WINDOW = timedelta(minutes=30)


@dataclass(frozen=True, slots=True)
class EndpointStats:
    uptime: dict[str, float | None]  # window name → success share (0..1), None without data
    hourly: list[float | None]  # uptime per UTC hour of the last 24, the current one last
    latency: Percentiles | None  # time to first token, ms
    throughput: Percentiles | None  # completion tokens per second of generation time


def succeeded() -> ColumnElement[bool]:
    return and_(g.c.status >= 200, g.c.status < 400)


def failed() -> ColumnElement[bool]:
    # Upstream or gateway failures; rate limits (429), the caller's own 4xx and
    # cancellations (499) say nothing about the endpoint.
    return (g.c.status >= 500) | (g.c.status == 408)


def count_where(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    return func.sum(case((condition, 1), else_=0))


def _share(ok: int, err: int) -> float | None:
    return ok / (ok + err) if ok + err else None


@dataclass(slots=True)
class _Counts:
    windows: dict[str, list[int]]  # window → [ok, err]
    hours: list[tuple[int, int] | None]


async def _uptime(conn: AsyncConnection, model_id: str, now: datetime) -> dict[str, _Counts]:
    """One pass over the model's last day, grouped by endpoint and UTC hour."""
    hour = utc_hour(conn).label("hour")
    columns = [count_where(succeeded()).label("ok"), count_where(failed()).label("err")]
    for name, span in UPTIME_WINDOWS.items():
        recent = g.c.created_at >= now - span
        columns.append(count_where(and_(recent, succeeded())).label(f"ok_{name}"))
        columns.append(count_where(and_(recent, failed())).label(f"err_{name}"))
    since = min(now - max(UPTIME_WINDOWS.values()), first_hour(now))
    query = (
        select(g.c.endpoint, hour, *columns)
        .where(g.c.model == model_id, g.c.created_at >= since, g.c.endpoint.is_not(None))
        .group_by(g.c.endpoint, hour)
    )
    slots = {label: i for i, label in enumerate(hour_labels(now))}
    result: dict[str, _Counts] = {}
    for row in (await conn.execute(query)).mappings():
        counts = result.setdefault(
            row["endpoint"],
            _Counts({name: [0, 0] for name in UPTIME_WINDOWS}, [None] * HOURS),
        )
        for name in UPTIME_WINDOWS:
            counts.windows[name][0] += int(row[f"ok_{name}"] or 0)
            counts.windows[name][1] += int(row[f"err_{name}"] or 0)
        slot = slots.get(str(row["hour"]))
        if slot is not None:
            counts.hours[slot] = (int(row["ok"] or 0), int(row["err"] or 0))
    return result


async def _performance(
    conn: AsyncConnection, model_id: str, now: datetime
) -> dict[str, tuple[list[float], list[float]]]:
    query = (
        select(
            g.c.endpoint,
            g.c.latency_ms,
            g.c.tokens_completion,
            g.c.generation_time_ms,
            g.c.streamed,
        )
        .where(g.c.model == model_id)
        .where(g.c.created_at >= now - PERF_WINDOW)
        .where(g.c.endpoint.is_not(None))
        .where(succeeded())
    )
    samples: dict[str, tuple[list[float], list[float]]] = {}
    for endpoint, latency, tokens, gen_ms, streamed in await conn.execute(query):
        latencies, speeds = samples.setdefault(endpoint, ([], []))
        if latency is not None:
            latencies.append(float(latency))
        # A non-streamed answer arrives whole: its "first token" is the whole answer, so
        # only streams measure generation speed.
        if streamed and tokens and gen_ms and gen_ms > 0:
            speeds.append(tokens / (gen_ms / 1000))
    return samples


async def endpoint_stats(
    conn: AsyncConnection, model_id: str, now: datetime
) -> dict[str, EndpointStats]:
    """Stats of each endpoint of `model_id` that has ledger rows in the last day."""
    uptime = await _uptime(conn, model_id, now)
    perf = await _performance(conn, model_id, now)
    stats = {}
    for endpoint in uptime.keys() | perf.keys():
        latencies, speeds = perf.get(endpoint, ([], []))
        counts = uptime.get(endpoint)
        stats[endpoint] = EndpointStats(
            uptime={
                name: _share(*counts.windows[name]) if counts else None for name in UPTIME_WINDOWS
            },
            hourly=[_share(*h) if h else None for h in counts.hours] if counts else [None] * HOURS,
            latency=percentiles(latencies),
            throughput=percentiles(speeds),
        )
    return stats
