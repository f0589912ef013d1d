"""Spend limits per key: the most a request can cost is reserved before it goes upstream,
and settled to its real cost when it ends (given back in full when it fails).

A request that would take the key past its limit is refused with 402 before any upstream
is called: when the limit is used up, saying when it resets; otherwise saying how many
tokens the key can still afford (OpenRouter's wording). Reservations live in a backend:
this process's memory (budget_memory) or Redis, shared by every replica (budget_redis).
The spend a backend starts from is the ledger's sum for the period plus what this process
has recorded but not yet written (budget_unflushed); `GET /v1/key` reads the same figure.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from modelyard.errors import PaymentRequired
from modelyard.ledger.periods import period_end, period_start
from modelyard.limits.budget_estimate import SpendAsk, spend_ask
from modelyard.limits.budget_unflushed import UnflushedSpend
from modelyard.routing.planner import Route
from modelyard.schema.chat import ChatRequest
from modelyard.store.records import ApiKey, Generation

SpendSince = Callable[[str, datetime | None], Awaitable[Decimal]]


@dataclass(frozen=True, slots=True)
class SpendPeriod:
    """One key's limit in its current period (a total limit has no start or end)."""

    key_id: str
    limit: Decimal
    start: datetime | None
    end: datetime | None

    @classmethod
    def of(cls, key: ApiKey) -> SpendPeriod:
        assert key.limit_usd is not None
        if key.limit_reset is None:
            return cls(key.id, key.limit_usd, None, None)
        return cls(
            key.id, key.limit_usd, period_start(key.limit_reset), period_end(key.limit_reset)
        )


class Hold(Protocol):
    async def settle(self, cost: Decimal) -> None:
        """Drop the reservation and count `cost` (0 when nothing was spent) as spent."""
        ...


@dataclass(frozen=True, slots=True)
class Standing:
    """A backend's answer to a reservation: the hold, or None when refused, and the
    key's spend and other reservations as it saw them."""

    hold: Hold | None
    spent: Decimal
    held: Decimal


class SpendBackend(Protocol):
    async def reserve(self, period: SpendPeriod, hold_id: str, amount: Decimal) -> Standing:
        """Hold `amount` if spent + held + amount stays within the limit, atomically."""
        ...

    async def spent(self, period: SpendPeriod) -> Decimal: ...

    async def close(self) -> None: ...


class LedgerSpend:
    """The spend a backend starts from: the ledger's rows plus those still queued here."""

    def __init__(self, spend_since: SpendSince, unflushed: UnflushedSpend) -> None:
        self._spend_since = spend_since
        self._unflushed = unflushed

    async def __call__(self, key_id: str, since: datetime | None) -> Decimal:
        # Read the queued amount first: a row written meanwhile is then counted twice for
        # a moment (never overspent), rather than missed.
        queued = self._unflushed.amount(key_id)
        return await self._spend_since(key_id, since) + queued


class BudgetReservation:
    """One request's hold on its key's budget; settled exactly once."""

    def __init__(self, hold: Hold) -> None:
        self._hold: Hold | None = hold

    async def settle(self, cost: Decimal) -> None:
        hold, self._hold = self._hold, None
        if hold is not None:
            await hold.settle(cost)

    async def release(self) -> None:
        await self.settle(Decimal(0))


class BudgetGuard:
    def __init__(
        self, backend: SpendBackend, ledger_spend: LedgerSpend, unflushed: UnflushedSpend
    ) -> None:
        self._backend = backend
        self._ledger_spend = ledger_spend
        self._unflushed = unflushed

    async def reserve(
        self, key: ApiKey | None, hold_id: str, request: ChatRequest, routes: list[Route]
    ) -> BudgetReservation | None:
        """Hold the most this request can cost, or raise 402. None for keys without a limit."""
        if key is None or key.limit_usd is None:
            return None
        ask = spend_ask(request, routes)
        standing = await self._backend.reserve(SpendPeriod.of(key), hold_id, ask.amount)
        if standing.hold is None:
            raise refused(key, ask, standing)
        return BudgetReservation(standing.hold)

    def recorded(self, row: Generation) -> None:
        """A ledger row was queued; its cost counts until the writer has written it."""
        self._unflushed.recorded(row)

    def flushed(self, rows: Iterable[Generation]) -> None:
        self._unflushed.flushed(rows)

    async def key_spend(self, key_id: str, since: datetime | None = None) -> Decimal:
        """The key's spend since `since`, rows not yet written included."""
        return await self._ledger_spend(key_id, since)

    async def limit_spend(self, key: ApiKey) -> Decimal:
        """What the key has spent in its limit's period, as the reservation sees it."""
        return await self._backend.spent(SpendPeriod.of(key))

    async def close(self) -> None:
        await self._backend.close()


def refused(key: ApiKey, ask: SpendAsk, standing: Standing) -> PaymentRequired:
    assert key.limit_usd is not None
    limit, spent, held = key.limit_usd, standing.spent, standing.held
    if key.limit_reset:
        resets: str | None = period_end(key.limit_reset).isoformat(timespec="seconds")
        when = f"Its {key.limit_reset} limit resets at {resets}."
    else:
        resets = None
        when = "It is a total limit: raise it or use another key."
    metadata: dict[str, object] = {
        "limit": float(limit),
        "spent": float(spent),
        "reserved": float(held),
        "resets_at": resets,
    }
    if spent >= limit:
        return PaymentRequired(
            f"This key's spend limit of ${limit} is used up (${spent:.6f} spent). {when}",
            metadata=metadata,
        )
    remaining = limit - spent - held
    in_flight = f", ${held:.6f} held by requests in progress" if held else ""
    if ask.prompt_alone_exceeds(remaining):
        return PaymentRequired(
            "This request requires more credits: its input alone may cost more than this "
            f"key has left (its spend limit is ${limit}: ${spent:.6f} spent{in_flight}). "
            f"Send less input. {when}",
            metadata=metadata,
        )
    affordable = ask.affordable_tokens(remaining)
    return PaymentRequired(
        "This request requires more credits, or fewer max_tokens. You requested up to "
        f"{ask.requested_tokens} tokens, but can only afford {affordable} "
        f"(this key's spend limit is ${limit}: ${spent:.6f} spent{in_flight}). {when}",
        param="max_tokens",
        metadata={
            **metadata,
            "requested_tokens": ask.requested_tokens,
            "affordable_tokens": affordable,
        },
    )
