"""Spend reservations in this process's memory (the default; one process, or replicas
that accept seeing each other's spend only through the ledger, within `ttl_s`).

Per key and period: the spend loaded from the ledger, plus what this process settled
since, plus what its requests in flight hold. Check and hold happen in one step of the
event loop, so concurrent requests cannot both take the last of a budget. The ledger is
read again every `ttl_s` to see other replicas' spend.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from modelyard.limits.budget import LedgerSpend, SpendPeriod, Standing

log = logging.getLogger(__name__)


@dataclass
class _Account:
    start: datetime | None
    spent: Decimal = Decimal(0)
    held: Decimal = Decimal(0)
    # Every cost settled here, ever: lets a reload add what was settled while it ran.
    settled: Decimal = Decimal(0)
    loaded_at: float = float("-inf")
    loading: asyncio.Future[None] | None = field(default=None, repr=False)


@dataclass(slots=True)
class MemoryHold:
    account: _Account
    amount: Decimal

    async def settle(self, cost: Decimal) -> None:
        self.account.held -= self.amount
        self.account.spent += cost
        self.account.settled += cost


class MemoryBudget:
    def __init__(self, ledger_spend: LedgerSpend, *, ttl_s: float = 5.0) -> None:
        self._ledger_spend = ledger_spend
        self._ttl_s = ttl_s
        self._accounts: dict[str, _Account] = {}

    async def reserve(self, period: SpendPeriod, hold_id: str, amount: Decimal) -> Standing:
        account = await self._account(period)
        spent, held = account.spent, account.held
        if spent >= period.limit or spent + held + amount > period.limit:
            return Standing(None, spent, held)
        account.held += amount
        return Standing(MemoryHold(account, amount), spent, held)

    async def spent(self, period: SpendPeriod) -> Decimal:
        return (await self._account(period)).spent

    async def _account(self, period: SpendPeriod) -> _Account:
        account = self._accounts.get(period.key_id)
        if account is None or account.start != period.start:
            account = self._accounts[period.key_id] = _Account(period.start)
        if time.monotonic() - account.loaded_at > self._ttl_s:
            if account.loading is None:
                account.loading = asyncio.ensure_future(self._load(period, account))
            if account.loaded_at == float("-inf"):  # nothing to go on yet: wait for it
                await asyncio.shield(account.loading)
        return account

    async def _load(self, period: SpendPeriod, account: _Account) -> None:
        settled_before = account.settled
        try:
            from_ledger = await self._ledger_spend(period.key_id, period.start)
        except Exception:
            if account.loaded_at == float("-inf"):
                raise  # the request waiting for it answers with the error
            log.warning("could not reload key %s's spend; keeping the last", period.key_id)
            return
        finally:
            account.loading = None
        account.spent = from_ledger + (account.settled - settled_before)
        account.loaded_at = time.monotonic()

    async def close(self) -> None:
        pass
