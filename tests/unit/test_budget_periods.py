"""Spend-limit periods (the budget guard itself: test_budget_reserve.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from modelyard.ledger.periods import period_end, period_start

NOW = datetime(2026, 12, 31, 18, 30, tzinfo=UTC)  # a Thursday


@pytest.mark.parametrize(
    ("reset", "start", "end"),
    [
        ("daily", datetime(2026, 12, 31, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)),
        ("weekly", datetime(2026, 12, 28, tzinfo=UTC), datetime(2027, 1, 4, tzinfo=UTC)),
        ("monthly", datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)),
    ],
)
def test_periods_start_at_utc_midnight_and_roll_over(
    reset: str, start: datetime, end: datetime
) -> None:
    assert period_start(reset, NOW) == start  # type: ignore[arg-type]
    assert period_end(reset, NOW) == end  # type: ignore[arg-type]
