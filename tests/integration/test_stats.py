"""modelyard.stats against SQLite and a real PostgreSQL, with hand-made ledger rows."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from modelyard.stats import Stats
from modelyard.stats.percentiles import percentile, percentiles
from modelyard.store import Generation, Store, database_url
from tests.pg import fresh_database

on_session_loop = pytest.mark.asyncio(loop_scope="session")

NOW = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)
MODEL = "google/gemma-3-270m"
EP_A = "local/google/gemma-3-270m"
EP_B = "openrouter/google/gemma-3-270m"
_ids = itertools.count()


def row(ago: timedelta, status: int = 200, **fields: Any) -> Generation:
    values: dict[str, Any] = {
        "app_id": None,
        "key_id": None,
        "model": MODEL,
        "provider": "local",
        "endpoint": EP_A,
    }
    values.update(fields)
    return Generation(id=f"gen-{next(_ids)}", created_at=NOW - ago, status=status, **values)


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        opened = await Store.open(database_url(tmp_path, None))
        yield opened
        await opened.close()
        return
    with fresh_database() as url:
        opened = await Store.open(url)
        yield opened
        await opened.close()


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def stats_of(store: Store, clock: Clock | None = None) -> Stats:
    return Stats(store._engine, clock or Clock())


def test_nearest_rank_percentiles() -> None:
    values = [float(v) for v in range(100, 0, -1)]
    spread = percentiles(values)
    assert spread is not None
    assert spread.as_dict() == {"p50": 50, "p75": 75, "p90": 90, "p99": 99}
    assert percentile([7.0], 0.99) == 7.0
    assert percentiles([]) is None


@on_session_loop
async def test_uptime_excludes_rate_limits_and_caller_errors(store: Store) -> None:
    minutes = timedelta(minutes=1)
    await store.insert_generations(
        [
            *(row(2 * minutes) for _ in range(3)),
            row(3 * minutes, 500),
            row(3 * minutes, 429),
            row(4 * minutes, 429),
            row(4 * minutes, 400),  # the caller's fault
            row(4 * minutes, 499),  # the caller went away
            row(20 * minutes, 502),
            *(row(timedelta(hours=10)) for _ in range(4)),
            *(row(timedelta(days=2), 500) for _ in range(10)),  # older than a day
            row(2 * minutes, 200, endpoint=None, provider=None),  # never routed
        ]
    )
    stats = await stats_of(store).endpoints(MODEL)
    assert set(stats) == {EP_A}
    assert stats[EP_A].uptime == {"5m": 0.75, "30m": 0.6, "1d": 7 / 9}


@on_session_loop
async def test_latency_and_throughput_percentiles_over_30_minutes(store: Store) -> None:
    minute = timedelta(minutes=1)
    streamed = {"streamed": True}
    await store.insert_generations(
        [
            row(
                minute,
                latency_ms=100.0,
                tokens_completion=10,
                generation_time_ms=1000.0,
                **streamed,
            ),
            row(
                minute,
                latency_ms=300.0,
                tokens_completion=30,
                generation_time_ms=1000.0,
                **streamed,
            ),
            row(
                minute,
                latency_ms=200.0,
                tokens_completion=40,
                generation_time_ms=2000.0,
                **streamed,
            ),
            # Not streamed: its latency counts, but it arrived whole (no generation speed).
            row(minute, latency_ms=250.0, tokens_completion=900, generation_time_ms=0.01),
            row(minute, 500, latency_ms=9000.0),  # failures do not count
            row(40 * minute, latency_ms=5000.0, tokens_completion=1, generation_time_ms=1.0),
            row(minute, endpoint=EP_B, latency_ms=50.0),  # no completion tokens
        ]
    )
    stats = await stats_of(store).endpoints(MODEL)
    a, b = stats[EP_A], stats[EP_B]
    assert a.latency is not None and a.throughput is not None
    assert a.latency.as_dict() == {"p50": 200.0, "p75": 250.0, "p90": 300.0, "p99": 300.0}
    assert a.throughput.as_dict() == {"p50": 20.0, "p75": 30.0, "p90": 30.0, "p99": 30.0}
    assert b.latency is not None and b.latency.p50 == 50.0
    assert b.throughput is None
    assert b.uptime == {"5m": 1.0, "30m": 1.0, "1d": 1.0}
    assert await stats_of(store).endpoints("other/model") == {}


@on_session_loop
async def test_tokens_per_day_and_top_apps(store: Store) -> None:
    alpha, beta = await store.create_app("alpha"), await store.create_app("beta")
    day = timedelta(days=1)
    await store.insert_generations(
        [
            row(timedelta(hours=1), app_id=alpha.id, tokens_prompt=10, tokens_completion=5),
            row(timedelta(hours=2), app_id=beta.id, tokens_prompt=100, x_title="Writer"),
            # Yesterday 23:59:59 UTC, and the first and just-outside days of the window.
            row(timedelta(hours=12, seconds=1), app_id=alpha.id, tokens_completion=7),
            row(29 * day, app_id=beta.id, tokens_prompt=3, http_referer="https://b.example"),
            row(30 * day, app_id=beta.id, tokens_prompt=1000),
            row(timedelta(hours=1), model="other/model", app_id=beta.id, tokens_prompt=50),
        ]
    )
    clock = Clock()
    stats = stats_of(store, clock)
    usage = await stats.usage(MODEL, {alpha.id: "alpha", beta.id: "beta"})
    per_day = dict(usage.tokens_per_day)
    assert len(per_day) == 30 and min(per_day) == date(2024, 2, 10)
    assert per_day[date(2024, 3, 10)] == 115
    assert per_day[date(2024, 3, 9)] == 7
    assert per_day[date(2024, 2, 10)] == 3
    assert sum(per_day.values()) == 125
    assert [(r.label, r.tokens, r.requests) for r in usage.top_apps] == [
        ("beta", 103, 2),
        ("alpha", 22, 2),
    ]
    assert [(r.label, r.tokens) for r in usage.top_titles] == [
        ("Writer", 100),
        ("https://b.example", 3),
    ]
    assert await stats.total_tokens([MODEL, "other/model"]) == {MODEL: 125, "other/model": 50}

    # Closed days are cached; new rows of today still count, and the next day moves on.
    await store.insert_generations([row(timedelta(minutes=1), tokens_prompt=1)])
    clock.now = NOW + day
    per_day = dict((await stats.usage(MODEL, {})).tokens_per_day)
    assert per_day[date(2024, 3, 10)] == 116
    assert date(2024, 2, 10) not in per_day and per_day[date(2024, 3, 11)] == 0


@on_session_loop
async def test_recommended_parameters_are_p10_p50_p90_of_what_was_sent(store: Store) -> None:
    temps = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    rows = [
        row(timedelta(minutes=n), params={"temperature": t, "seed": 7, "logprobs": True})
        for n, t in enumerate(temps)
    ]
    rows.append(row(timedelta(minutes=30), params={"top_p": 0.9, "max_tokens": 64}))
    await store.insert_generations(rows)
    spread = {p.name: p for p in await stats_of(store).parameters(MODEL)}
    assert set(spread) == {"temperature", "top_p", "max_tokens"}
    t = spread["temperature"]
    assert (t.count, t.p10, t.p50, t.p90) == (10, 0.1, 0.5, 0.9)
    assert (spread["max_tokens"].p10, spread["max_tokens"].p90) == (64, 64)
    assert await stats_of(store).parameters("other/model") == []


@on_session_loop
async def test_hourly_uptime_buckets_by_utc_hour(store: Store) -> None:
    hour = timedelta(hours=1)
    await store.insert_generations(
        [
            row(timedelta(minutes=1)),  # 11:59 → the slot before the current hour
            row(timedelta(minutes=1), 503),
            row(3 * hour, 429),  # rate limited only: no data
            row(23 * hour),  # 13:00 yesterday → the first slot
            row(25 * hour, 500),  # before the window
        ]
    )
    shares = (await stats_of(store).endpoints(MODEL))[EP_A].hourly
    assert len(shares) == 24
    assert shares[-2] == 0.5 and shares[0] == 1.0 and shares[-1] is None
    assert shares[-4] is None and shares.count(None) == 22
