"""Everything that learns how a request ended, in one list made at start-up.

The service builds one `Outcome` per request (routing failures included) and hands it to
each observer in turn: the ledger, the metrics, the key's budget, endpoint health, sticky
routing and the rate-limit window all see the same bill.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from modelyard.ledger.writer import LedgerWriter
from modelyard.limits.base import RateLimiter, Reservation
from modelyard.limits.budget import BudgetGuard, BudgetReservation
from modelyard.metrics import GatewayMetrics
from modelyard.routing.planner import Planner, Route
from modelyard.routing.sticky import Conversation
from modelyard.store.records import Generation


@dataclass(slots=True)
class Outcome:
    row: Generation  # the ledger row: status, usage and cost as billed
    route: Route | None  # the route that answered, if any did
    session: Conversation
    budget: BudgetReservation | None = None  # the spend held for this request
    reservation: Reservation | None = None  # the rate-limit window's hold

    @property
    def served(self) -> bool:
        return self.row.status == 200


class Observer(Protocol):
    async def observe(self, outcome: Outcome) -> None: ...


class LedgerObserver:
    def __init__(self, ledger: LedgerWriter) -> None:
        self._ledger = ledger

    async def observe(self, outcome: Outcome) -> None:
        self._ledger.record(outcome.row)


class MetricsObserver:
    def __init__(self, metrics: GatewayMetrics) -> None:
        self._metrics = metrics

    async def observe(self, outcome: Outcome) -> None:
        self._metrics.observe(outcome.row)


class BudgetObserver:
    """The key's spend: counted until the ledger has the row, and the hold settled."""

    def __init__(self, budget: BudgetGuard) -> None:
        self._budget = budget

    async def observe(self, outcome: Outcome) -> None:
        self._budget.recorded(outcome.row)
        if outcome.budget is not None:
            await outcome.budget.settle(outcome.row.cost)


class HealthObserver:
    """Latency and throughput of a served request feed the endpoint's standing."""

    def __init__(self, planner: Planner) -> None:
        self._health = planner.health

    async def observe(self, outcome: Outcome) -> None:
        row = outcome.row
        if outcome.served and row.endpoint is not None:
            self._health.observe(row.endpoint, row.latency_ms, row.throughput)


class StickyObserver:
    """A conversation served by a caching endpoint goes back to it next time."""

    def __init__(self, planner: Planner) -> None:
        self._planner = planner

    async def observe(self, outcome: Outcome) -> None:
        if outcome.served and outcome.route is not None:
            self._planner.served(outcome.session, outcome.route)


class LimiterObserver:
    """The rate-limit window is settled on the tokens really used."""

    def __init__(self, limiter: RateLimiter) -> None:
        self._limiter = limiter

    async def observe(self, outcome: Outcome) -> None:
        if outcome.reservation is not None:
            row = outcome.row
            await self._limiter.settle(
                outcome.reservation, row.tokens_prompt + row.tokens_completion
            )
