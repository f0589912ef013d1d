"""Sliding-window rate limits: edges, Retry-After, settling, and the Redis backend."""

from __future__ import annotations

import asyncio
import secrets

import pytest

from modelyard.errors import RateLimited, ServiceUnavailable
from modelyard.limits.base import Limits, Reservation
from modelyard.limits.memory import MemoryRateLimiter
from modelyard.limits.redis_backend import RedisRateLimiter
from modelyard.limits.window import retry_after

REDIS = "redis://127.0.0.1:6379/0"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_retry_after_for_requests_and_tokens() -> None:
    # (bucket, requests, tokens): one request of 10 tokens at 0 s, 10 s and 20 s.
    buckets = [(0, 1, 10), (100, 1, 10), (200, 1, 10)]
    now = 30_000  # ms
    assert retry_after(buckets, now, rpm=3, tpm=None, tokens=1) == 30.0  # oldest leaves at 60
    assert retry_after(buckets, now, rpm=4, tpm=None, tokens=1) == 0.0
    # 30 used + 15 wanted - 35 allowed = 10 too many: the oldest (10 tokens) must leave.
    assert retry_after(buckets, now, rpm=None, tpm=35, tokens=15) == 30.0
    # 20 too many: the two oldest must leave, the second at 70.
    assert retry_after(buckets, now, rpm=None, tpm=25, tokens=15) == 40.0
    assert retry_after([], 0, rpm=None, tpm=10, tokens=11) == 60.0  # can never fit
    # Several requests in one bucket leave together.
    assert retry_after([(0, 5, 0), (100, 1, 0)], now, rpm=3, tpm=None, tokens=0) == 30.0


async def test_requests_per_minute_window_edges_and_retry_after() -> None:
    clock = Clock()
    limiter = MemoryRateLimiter(clock)
    limits = Limits(rpm=3, tpm=None)
    for step in range(3):
        reservation = await limiter.reserve("app:m", limits, 0)
        assert reservation.remaining_requests == 2 - step
        clock.now += 10
    with pytest.raises(RateLimited) as caught:
        await limiter.reserve("app:m", limits, 0)
    # The first request was at t0; now is t0+30: it leaves the window at t0+60.
    assert caught.value.headers["Retry-After"] == "30"
    clock.now += 29.999
    with pytest.raises(RateLimited):
        await limiter.reserve("app:m", limits, 0)
    clock.now += 0.001  # exactly 60 s after the first request
    await limiter.reserve("app:m", limits, 0)
    assert (await limiter.reserve("other:m", limits, 0)).remaining_requests == 2


async def test_a_busy_window_holds_buckets_not_requests() -> None:
    clock = Clock()
    limiter = MemoryRateLimiter(clock)
    limits = Limits(rpm=1_000_000, tpm=10**12)
    for _ in range(30_000):  # 500 requests/s for a minute, then half a minute more
        await limiter.settle(await limiter.reserve("busy:m", limits, 50), 20)
        clock.now += 0.003
    window = limiter._windows["busy:m"]
    assert len(window.buckets) <= 601
    last = await limiter.reserve("busy:m", limits, 0)
    # Requests of the last 60 s, to the bucket: 20,000 of them, each settled to 20 tokens.
    assert abs((limits.rpm - last.remaining_requests) - 20_000) <= 40  # type: ignore[operator]
    assert window.tokens == 20 * (window.requests - 1)


async def test_token_reservations_are_settled_to_real_usage() -> None:
    clock = Clock()
    limiter = MemoryRateLimiter(clock)
    limits = Limits(rpm=None, tpm=1000)
    first = await limiter.reserve("s", limits, 800)
    with pytest.raises(RateLimited):
        await limiter.reserve("s", limits, 300)
    await limiter.settle(first, 100)  # it used far less than reserved
    second = await limiter.reserve("s", limits, 300)
    assert second.remaining_tokens == 600
    headers = dict(second.headers())
    assert headers[b"x-ratelimit-limit-tokens"] == b"1000"
    assert headers[b"x-ratelimit-remaining-tokens"] == b"600"
    assert headers[b"x-ratelimit-reset-tokens"] == b"1m0s"


def scope() -> str:
    return f"test-{secrets.token_hex(4)}:model"


async def test_redis_limits_are_exact_under_concurrency() -> None:
    a = RedisRateLimiter(REDIS)
    b = RedisRateLimiter(REDIS)  # a second "replica"
    try:
        name, limits = scope(), Limits(rpm=20, tpm=None)

        async def attempt(limiter: RedisRateLimiter) -> bool:
            try:
                await limiter.reserve(name, limits, 1)
            except RateLimited:
                return False
            return True

        results = await asyncio.gather(*(attempt(a if i % 2 else b) for i in range(60)))
        assert sum(results) == 20
        with pytest.raises(RateLimited) as caught:
            await a.reserve(name, limits, 1)
        assert 55 <= int(caught.value.headers["Retry-After"]) <= 60
    finally:
        await a.close()
        await b.close()


async def test_redis_settle_gives_tokens_back() -> None:
    limiter = RedisRateLimiter(REDIS)
    try:
        name, limits = scope(), Limits(rpm=None, tpm=1000)
        first: Reservation = await limiter.reserve(name, limits, 900)
        with pytest.raises(RateLimited):
            await limiter.reserve(name, limits, 200)
        await limiter.settle(first, 50)
        assert (await limiter.reserve(name, limits, 200)).remaining_tokens == 750
    finally:
        await limiter.close()


async def evalsha_calls(limiter: RedisRateLimiter) -> int:
    stats = (await limiter._redis.call("INFO", "commandstats")).decode()
    line = next(ln for ln in stats.splitlines() if ln.startswith("cmdstat_evalsha:"))
    return int(line.split("calls=")[1].split(",")[0])


async def test_redis_settlements_of_one_loop_turn_go_in_one_call() -> None:
    limiter = RedisRateLimiter(REDIS)
    try:
        name, limits = scope(), Limits(rpm=None, tpm=100_000)
        reservations = await asyncio.gather(
            *(limiter.reserve(name, limits, 100) for _ in range(50))
        )
        before = await evalsha_calls(limiter)
        await asyncio.gather(*(limiter.settle(r, 10) for r in reservations))
        assert await evalsha_calls(limiter) - before == 1
        assert int(await limiter._redis.call("HGET", RedisRateLimiter._keys(name)[0], "T")) == 500
    finally:
        await limiter.close()


async def test_redis_keeps_counters_per_bucket_not_one_entry_per_request() -> None:
    limiter = RedisRateLimiter(REDIS)
    try:
        name, limits = scope(), Limits(rpm=1_000_000, tpm=None)
        for _ in range(20):
            await asyncio.gather(*(limiter.reserve(name, limits, 3) for _n in range(100)))
        window, buckets = RedisRateLimiter._keys(name)
        raw = limiter._redis
        assert int(await raw.call("HGET", window, "R")) == 2000
        assert int(await raw.call("HGET", window, "T")) == 6000
        # Counters for the ~100 ms buckets those 2,000 requests fell into, not 2,000 entries.
        held = await raw.call("ZCARD", buckets)
        assert held * 2 + 2 == await raw.call("HLEN", window) < 200
    finally:
        await limiter.close()


async def test_redis_down_fails_open_or_closed_as_configured() -> None:
    failures: list[int] = []
    down = "redis://127.0.0.1:1/0"
    open_limiter = RedisRateLimiter(down, on_failure=lambda: failures.append(1))
    closed_limiter = RedisRateLimiter(down, failure_policy="closed")
    try:
        served = await open_limiter.reserve("s:m", Limits(rpm=1, tpm=None), 1)
        assert served.limit_requests is None and failures == [1]
        with pytest.raises(ServiceUnavailable):
            await closed_limiter.reserve("s:m", Limits(rpm=1, tpm=None), 1)
    finally:
        await open_limiter.close()
        await closed_limiter.close()
