"""Spend reservations: in memory and in the machine's Redis (two clients standing in for
two replicas), the most a request can cost, and what a refused request is told."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from modelyard.catalog import load_catalog
from modelyard.errors import PaymentRequired, ServiceUnavailable
from modelyard.ledger.periods import period_start
from modelyard.limits.budget import BudgetGuard, LedgerSpend, SpendPeriod
from modelyard.limits.budget_estimate import prompt_ceiling, spend_ask
from modelyard.limits.budget_memory import MemoryBudget
from modelyard.limits.budget_redis import RedisBudget, to_units
from modelyard.limits.budget_unflushed import UnflushedSpend
from modelyard.limits.redis_client import RedisClient
from modelyard.routing.planner import Route
from modelyard.schema.chat import parse_chat_request
from modelyard.store.records import ApiKey, Generation
from tests.e2e.server import free_port

REDIS = "redis://127.0.0.1:6379/5"  # a database of its own: no other test's keys
CATALOG = """
[[providers]]
id = "cheap"
kind = "openai"
[[providers]]
id = "dear"
kind = "openai"

[[models]]
id = "t/model"
name = "T"
max_output = 1000
[[models.endpoints]]
provider = "cheap"
upstream_model = "m"
price = { prompt = 1.0, completion = 2.0 }
[[models.endpoints]]
provider = "dear"
upstream_model = "m"
max_output = 500
price = { prompt = 3.0, completion = 4.0, reasoning = 10.0 }
"""
REQUEST = parse_chat_request(
    b'{"model": "t/model", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}'
)


@pytest.fixture(scope="module")
def routes(tmp_path_factory: pytest.TempPathFactory) -> list[Route]:
    path: Path = tmp_path_factory.mktemp("budget") / "catalog.toml"
    path.write_text(CATALOG)
    model = load_catalog(path).find("t/model")
    assert model is not None
    return [Route(model, endpoint, provider=None) for endpoint in model.endpoints]  # type: ignore[arg-type]


def key(limit: str | None, reset: str | None = None) -> ApiKey:
    return ApiKey(
        id=f"key_{secrets.token_hex(4)}",
        app_id="app_1",
        label="",
        prefix="my-",
        created_at=datetime.now(UTC),
        limit_usd=Decimal(limit) if limit else None,
        limit_reset=reset,  # type: ignore[arg-type]
    )


def row(gen_id: str, key_id: str, cost: str) -> Generation:
    return Generation(
        id=gen_id,
        created_at=datetime.now(UTC),
        app_id="app_1",
        key_id=key_id,
        model="t/model",
        provider="cheap",
        endpoint="cheap/t/model",
        status=200,
        error=None,
        tokens_prompt=1,
        tokens_completion=1,
        tokens_cached=0,
        tokens_cache_write=0,
        tokens_reasoning=0,
        cost=Decimal(cost),
        latency_ms=1.0,
        generation_time_ms=1.0,
        streamed=False,
        cancelled=False,
        finish_reason="stop",
        native_finish_reason="stop",
        is_byok=False,
        http_referer=None,
        x_title=None,
        params={},
        attempts=[],
        prompt_text=None,
        output_text=None,
    )


class Ledger:
    """The written ledger's sum, as a number the test sets (the store has its own tests)."""

    def __init__(self, amount: str = "0") -> None:
        self.amount = Decimal(amount)
        self.asked: list[datetime | None] = []
        self.gate: asyncio.Event | None = None

    async def spend_since(self, key_id: str, since: datetime | None) -> Decimal:
        self.asked.append(since)
        if self.gate is not None:
            await self.gate.wait()
        return self.amount


def memory_guard(ledger: Ledger) -> tuple[BudgetGuard, MemoryBudget]:
    unflushed = UnflushedSpend()
    spend = LedgerSpend(ledger.spend_since, unflushed)
    backend = MemoryBudget(spend)
    return BudgetGuard(backend, spend, unflushed), backend


def test_the_ask_is_the_dearest_route_at_its_dearest_rates(routes: list[Route]) -> None:
    ask = spend_ask(REQUEST, routes)
    prompt = prompt_ceiling(REQUEST)
    # "dear": prompt at 3, answer tokens at the reasoning rate 10 (per million).
    assert ask.amount == (prompt * 3 + 100 * 10) / Decimal(1_000_000)
    assert ask.requested_tokens == 100
    assert ask.affordable_tokens(ask.amount) == 100
    assert ask.affordable_tokens(ask.amount - Decimal("1e-10")) == 99
    no_fallbacks = parse_chat_request(
        b'{"model": "t/model", "messages": [{"role": "user", "content": "hi"}],'
        b' "provider": {"allow_fallbacks": false}}'
    )
    only_cheap = spend_ask(no_fallbacks, routes)  # unset max_tokens: the endpoint's max
    assert only_cheap.amount == (prompt_ceiling(no_fallbacks) * 1 + 1000 * 2) / Decimal(1_000_000)


async def test_memory_holds_let_no_burst_past_the_limit(routes: list[Route]) -> None:
    ledger = Ledger("0.40")
    guard, _ = memory_guard(ledger)
    monthly = key("0.5", "monthly")
    ask = spend_ask(REQUEST, routes).amount

    async def one(index: int) -> bool:
        try:
            held = await guard.reserve(monthly, f"gen-{index}", REQUEST, routes)
        except PaymentRequired:
            return False
        assert held is not None
        await asyncio.sleep(0.01)
        await held.settle(ask / 2)
        return True

    served = sum(await asyncio.gather(*(one(i) for i in range(200))))
    assert served == int(Decimal("0.10") // ask)  # all 200 at once: only what fits is held
    assert ledger.asked == [period_start("monthly")]  # loaded once
    assert await guard.limit_spend(monthly) == Decimal("0.40") + served * ask / 2


async def test_a_reload_keeps_what_was_settled_and_recorded_meanwhile(
    routes: list[Route],
) -> None:
    ledger = Ledger("0.10")
    unflushed = UnflushedSpend()
    spend = LedgerSpend(ledger.spend_since, unflushed)
    backend = MemoryBudget(spend, ttl_s=0.0)  # every reserve reloads
    guard = BudgetGuard(backend, spend, unflushed)
    total = key("1")
    first = await guard.reserve(total, "gen-1", REQUEST, routes)
    assert first is not None
    guard.recorded(row("gen-1", total.id, "0.05"))  # queued, not yet written
    await first.settle(Decimal("0.05"))
    ledger.gate = asyncio.Event()
    second = await guard.reserve(total, "gen-2", REQUEST, routes)  # starts a reload
    await asyncio.sleep(0)
    assert second is not None
    guard.recorded(row("gen-2", total.id, "0.02"))  # while the reload reads the ledger
    await second.settle(Decimal("0.02"))
    ledger.gate.set()
    await asyncio.sleep(0.01)
    # 0.10 written + 0.05 queued when the reload began + 0.02 settled while it ran.
    assert await backend.spent(SpendPeriod.of(total)) == Decimal("0.17")
    assert await guard.key_spend(total.id) == Decimal("0.17")
    guard.flushed([row("gen-1", total.id, "0.05"), row("gen-2", total.id, "0.02")])
    assert await guard.key_spend(total.id) == Decimal("0.10")  # written: the ledger counts it


async def test_a_released_hold_is_given_back(routes: list[Route]) -> None:
    guard, _ = memory_guard(Ledger())
    ask = spend_ask(REQUEST, routes).amount
    small = key(str(ask))
    held = await guard.reserve(small, "gen-1", REQUEST, routes)
    assert held is not None
    with pytest.raises(PaymentRequired) as caught:
        await guard.reserve(small, "gen-2", REQUEST, routes)
    assert "its input alone may cost more" in caught.value.message
    assert "held by requests in progress" in caught.value.message
    await held.release()
    await held.release()  # settled once, whatever is called after
    assert await guard.reserve(small, "gen-3", REQUEST, routes) is not None


async def test_redis_holds_are_shared_by_replicas_and_exact(routes: list[Route]) -> None:
    ledger = Ledger("0.01")
    clients = [RedisClient(REDIS), RedisClient(REDIS)]
    unflushed = UnflushedSpend()
    spend = LedgerSpend(ledger.spend_since, unflushed)
    guards = [
        BudgetGuard(
            RedisBudget(client, spend, fail_open=False, fallback=MemoryBudget(spend)),
            spend,
            unflushed,
        )
        for client in clients
    ]
    daily = key("0.05", "daily")
    ask = spend_ask(REQUEST, routes).amount
    cost = Decimal("0.0000123457")  # exact to the ledger's 1e-10

    async def one(index: int) -> bool:
        try:
            held = await guards[index % 2].reserve(daily, f"gen-{index}", REQUEST, routes)
        except PaymentRequired:
            return False
        assert held is not None
        await asyncio.sleep(0.05)
        await held.settle(cost)
        return True

    try:
        served = sum(await asyncio.gather(*(one(i) for i in range(100))))
        assert served == int(Decimal("0.04") // ask)
        expected = Decimal("0.01") + served * cost
        for guard in guards:
            assert await guard.limit_spend(daily) == expected
        assert ledger.asked[0] == period_start("daily")  # the baseline came from the ledger
        assert await clients[0].call("GET", RedisBudget.keys(SpendPeriod.of(daily))[0]) == (
            str(to_units(expected)).encode()
        )
    finally:
        await clients[0].call("DEL", *RedisBudget.keys(SpendPeriod.of(daily)))
        for client in clients:
            await client.close()


async def test_a_redis_hold_left_by_a_dead_replica_expires(routes: list[Route]) -> None:
    client = RedisClient(REDIS)
    spend = LedgerSpend(Ledger().spend_since, UnflushedSpend())
    budget = RedisBudget(
        client, spend, fail_open=False, fallback=MemoryBudget(spend), hold_ttl_ms=100
    )
    total = SpendPeriod.of(key("0.01"))
    try:
        first = await budget.reserve(total, "gen-1", Decimal("0.01"))
        assert first.hold is not None  # and never settled
        refused = await budget.reserve(total, "gen-2", Decimal("0.01"))
        assert refused.hold is None and refused.held == Decimal("0.01")
        await asyncio.sleep(0.2)
        assert (await budget.reserve(total, "gen-3", Decimal("0.01"))).hold is not None
    finally:
        await client.call("DEL", *RedisBudget.keys(total))
        await client.close()


async def test_a_used_up_limit_says_when_it_resets(routes: list[Route]) -> None:
    guard, _ = memory_guard(Ledger("0.5"))
    with pytest.raises(PaymentRequired) as caught:
        await guard.reserve(key("0.5", "weekly"), "gen-1", REQUEST, routes)
    assert "spend limit of $0.5 is used up" in caught.value.message
    assert "weekly limit resets at" in caught.value.message
    assert await guard.reserve(key(None), "gen-2", REQUEST, routes) is None  # no limit


@pytest.mark.parametrize("fail_open", [True, False], ids=["open", "closed"])
async def test_redis_down_follows_the_failure_policy(fail_open: bool) -> None:
    client = RedisClient(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    spend = LedgerSpend(Ledger("0.004").spend_since, UnflushedSpend())
    budget = RedisBudget(client, spend, fail_open=fail_open, fallback=MemoryBudget(spend))
    total = SpendPeriod.of(key("0.01"))
    try:
        if not fail_open:
            with pytest.raises(ServiceUnavailable):
                await budget.reserve(total, "gen-1", Decimal("0.005"))
            return
        # Held in this process instead, against the ledger's figure.
        assert (await budget.reserve(total, "gen-1", Decimal("0.005"))).hold is not None
        refused = await budget.reserve(total, "gen-2", Decimal("0.005"))
        assert refused.hold is None and refused.spent == Decimal("0.004")
    finally:
        await client.close()
