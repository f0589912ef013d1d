"""Recommended parameters: p10/p50/p90 of each numeric parameter callers sent for a model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from modelyard.stats.percentiles import percentile
from modelyard.store.tables import generations as g

SAMPLE_ROWS = 2000  # the most recent requests of the model (index range, newest first)
IGNORED = frozenset({"seed"})  # numeric, but not a preference


@dataclass(frozen=True, slots=True)
class ParameterSpread:
    name: str
    count: int  # requests that sent it
    p10: float
    p50: float
    p90: float


def spreads(samples: list[dict[str, Any]]) -> list[ParameterSpread]:
    values: dict[str, list[float]] = {}
    for params in samples:
        for name, value in params.items():
            numeric = isinstance(value, int | float) and not isinstance(value, bool)
            if numeric and name not in IGNORED:
                values.setdefault(name, []).append(float(value))
    result = []
    for name in sorted(values):
        ordered = sorted(values[name])
        p10, p50, p90 = (percentile(ordered, q) for q in (0.1, 0.5, 0.9))
        result.append(ParameterSpread(name, len(ordered), p10, p50, p90))
    return result


async def recommended_parameters(conn: AsyncConnection, model_id: str) -> list[ParameterSpread]:
    query = (
        select(g.c.params)
        .where(g.c.model == model_id)
        .order_by(g.c.created_at.desc())
        .limit(SAMPLE_ROWS)
    )
    return spreads([p for (p,) in await conn.execute(query) if isinstance(p, dict)])
