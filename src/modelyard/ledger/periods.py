"""Spend-limit periods: when the current daily, weekly or monthly window began and ends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from modelyard.store.records import LimitReset


def period_start(reset: LimitReset, now: datetime | None = None) -> datetime:
    """Start (UTC midnight) of the current period; weeks start on Monday."""
    now = now or datetime.now(UTC)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if reset == "daily":
        return day
    if reset == "weekly":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def period_end(reset: LimitReset, now: datetime | None = None) -> datetime:
    start = period_start(reset, now)
    if reset == "daily":
        return start + timedelta(days=1)
    if reset == "weekly":
        return start + timedelta(days=7)
    year, month = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
    return start.replace(year=year, month=month)
