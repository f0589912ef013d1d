"""Spend-limit periods and the budget guard."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from modelyard.errors import PaymentRequired
from modelyard.ledger.periods import period_end, period_start
from modelyard.limits.budget import BudgetGuard
from modelyard.store.records import ApiKey

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


def key(limit: str | None, reset: str | None = None) -> ApiKey:
    return ApiKey(
        id="key_1",
        app_id="app_1",
        label="",
        prefix="my-",
        created_at=NOW,
        limit_usd=Decimal(limit) if limit else None,
        limit_reset=reset,  # type: ignore[arg-type]
    )


async def test_guard_counts_the_period_and_local_spend() -> None:
    asked: list[datetime | None] = []

    async def spend_since(key_id: str, since: datetime | None) -> Decimal:
        asked.append(since)
        return Decimal("0.40")

    guard = BudgetGuard(spend_since)
    await guard.check(key("0.50", "monthly"))
    assert asked[0] == period_start("monthly")
    guard.spent(key("0.50", "monthly"), Decimal("0.10"))
    with pytest.raises(PaymentRequired) as caught:
        await guard.check(key("0.50", "monthly"))
    assert "monthly limit resets at" in caught.value.message
    await guard.check(key(None))  # no limit, nothing to check
    await BudgetGuard(spend_since).check(key("1", None))  # total limit, since = None
    assert asked[-1] is None
