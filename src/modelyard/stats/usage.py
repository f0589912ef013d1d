"""Tokens per day and top apps of one model, from its daily roll-up."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, timedelta

from modelyard.stats.rollup import HISTORY_DAYS, DayUsage


@dataclass(frozen=True, slots=True)
class Ranked:
    label: str
    tokens: int
    requests: int


def tokens_per_day(usage: list[DayUsage], today: date) -> list[tuple[date, int]]:
    """Every day of the window, oldest first, zero where nothing was used."""
    totals: Counter[date] = Counter()
    for u in usage:
        totals[u.day] += u.tokens
    days = [today - timedelta(days=n) for n in range(HISTORY_DAYS - 1, -1, -1)]
    return [(d, totals[d]) for d in days]


def _rank(groups: dict[str, list[DayUsage]], limit: int) -> list[Ranked]:
    ranked = [
        Ranked(label, sum(u.tokens for u in rows), sum(u.requests for u in rows))
        for label, rows in groups.items()
    ]
    ranked.sort(key=lambda r: (-r.tokens, r.label))
    return ranked[:limit]


def top_apps(usage: list[DayUsage], app_names: dict[str, str], limit: int = 10) -> list[Ranked]:
    """Apps by tokens; rows without an app (admin calls) are left out."""
    groups: dict[str, list[DayUsage]] = {}
    for u in usage:
        if u.app_id is not None:
            groups.setdefault(app_names.get(u.app_id, u.app_id), []).append(u)
    return _rank(groups, limit)


def top_titles(usage: list[DayUsage], limit: int = 10) -> list[Ranked]:
    """Callers by their X-Title, else HTTP-Referer; rows with neither are left out."""
    groups: dict[str, list[DayUsage]] = {}
    for u in usage:
        label = u.x_title or u.http_referer
        if label:
            groups.setdefault(label, []).append(u)
    return _rank(groups, limit)
