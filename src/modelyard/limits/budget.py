"""Spend limits per key: checked at the start of each request, 402 once the limit is spent.

What a key spent in its current period comes from the ledger, cached for `ttl_s` and
topped up locally as this process's requests finish, so the hot path rarely touches the
database. Rows still queued in another replica's ledger writer are seen after they land
(a few tens of milliseconds): a burst across replicas can overshoot by that much.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from modelyard.errors import PaymentRequired
from modelyard.ledger.periods import period_end, period_start
from modelyard.store.records import ApiKey

SpendSince = Callable[[str, datetime | None], Awaitable[Decimal]]


@dataclass
class _Spent:
    loaded_at: float
    period: datetime | None
    amount: Decimal


class BudgetGuard:
    def __init__(self, spend_since: SpendSince, *, ttl_s: float = 5.0) -> None:
        self._spend_since = spend_since
        self._ttl_s = ttl_s
        self._spent: dict[str, _Spent] = {}

    async def check(self, key: ApiKey | None) -> None:
        if key is None or key.limit_usd is None:
            return
        period = period_start(key.limit_reset) if key.limit_reset else None
        cached = self._spent.get(key.id)
        if (
            cached is None
            or cached.period != period
            or time.monotonic() - cached.loaded_at > self._ttl_s
        ):
            amount = await self._spend_since(key.id, period)
            cached = self._spent[key.id] = _Spent(time.monotonic(), period, amount)
        if cached.amount >= key.limit_usd:
            raise exhausted(key, cached.amount)

    def spent(self, key: ApiKey | None, cost: Decimal) -> None:
        if key is not None and cost and key.id in self._spent:
            self._spent[key.id].amount += cost


def exhausted(key: ApiKey, spent: Decimal) -> PaymentRequired:
    assert key.limit_usd is not None
    if key.limit_reset:
        resets = period_end(key.limit_reset).isoformat(timespec="seconds")
        when = f"Its {key.limit_reset} limit resets at {resets}."
    else:
        resets = None
        when = "It is a total limit: raise it or use another key."
    return PaymentRequired(
        f"This key's spend limit of ${key.limit_usd} is used up (${spent:.6f} spent). {when}",
        metadata={"limit": float(key.limit_usd), "spent": float(spent), "resets_at": resets},
    )
