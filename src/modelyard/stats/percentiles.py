"""Nearest-rank percentiles, computed in Python so SQLite and PostgreSQL give the same answer."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


def percentile(ordered: Sequence[float], q: float) -> float:
    """The nearest-rank `q` quantile (0 < q <= 1) of a non-empty ascending sequence."""
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass(frozen=True, slots=True)
class Percentiles:
    p50: float
    p75: float
    p90: float
    p99: float

    def as_dict(self) -> dict[str, float]:
        return {"p50": self.p50, "p75": self.p75, "p90": self.p90, "p99": self.p99}


def percentiles(values: Iterable[float]) -> Percentiles | None:
    """p50/p75/p90/p99 of `values`; None when there are none."""
    ordered = sorted(values)
    if not ordered:
        return None
    return Percentiles(*(percentile(ordered, q) for q in (0.5, 0.75, 0.9, 0.99)))
