"""Stats: the one entry point the API and the pages use to read numbers from the ledger."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncEngine

from modelyard.stats.endpoints import EndpointStats, endpoint_stats
from modelyard.stats.keys import byok_spend
from modelyard.stats.parameters import ParameterSpread, recommended_parameters
from modelyard.stats.rollup import DailyRollup
from modelyard.stats.usage import Ranked, tokens_per_day, top_apps, top_titles

Clock = Callable[[], datetime]
log = logging.getLogger(__name__)


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ModelUsage:
    tokens_per_day: list[tuple[date, int]]  # the last 30 UTC days, oldest first
    top_apps: list[Ranked]
    top_titles: list[Ranked]  # by X-Title / HTTP-Referer


class Stats:
    def __init__(self, engine: AsyncEngine, clock: Clock = _utc_now) -> None:
        self._engine = engine
        self._clock = clock
        self._rollup = DailyRollup()

    def now(self) -> datetime:
        return self._clock()

    async def endpoints(self, model_id: str) -> dict[str, EndpointStats]:
        async with self._engine.connect() as conn:
            return await endpoint_stats(conn, model_id, self._clock())

    async def key_byok_spend(
        self, key_id: str, periods: dict[str, datetime | None]
    ) -> dict[str, Decimal]:
        """The key's spend through BYOK since each period's start (None: all time)."""
        async with self._engine.connect() as conn:
            return await byok_spend(conn, key_id, periods)

    async def usage(self, model_id: str, app_names: dict[str, str]) -> ModelUsage:
        now = self._clock()
        async with self._engine.connect() as conn:
            rows = await self._rollup.usage(conn, model_id, now)
        return ModelUsage(
            tokens_per_day(rows, now.date()), top_apps(rows, app_names), top_titles(rows)
        )

    async def total_tokens(self, model_ids: list[str]) -> dict[str, int]:
        """Tokens of each model over the roll-up window (for versions by token share)."""
        now = self._clock()
        totals = {}
        async with self._engine.connect() as conn:
            for model_id in model_ids:
                totals[model_id] = sum(
                    u.tokens for u in await self._rollup.usage(conn, model_id, now)
                )
        return totals

    async def warm(self, model_ids: list[str]) -> None:
        """Sum the closed days of each model ahead of the first page view."""
        now = self._clock()
        try:
            for model_id in model_ids:
                async with self._engine.connect() as conn:
                    await self._rollup.usage(conn, model_id, now)
        except Exception:  # best effort: a page view sums what is missing
            log.warning("warming the daily roll-ups failed", exc_info=True)

    async def parameters(self, model_id: str) -> list[ParameterSpread]:
        async with self._engine.connect() as conn:
            return await recommended_parameters(conn, model_id)
