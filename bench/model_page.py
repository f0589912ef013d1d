"""GET /models/{author}/{slug} with a large ledger: 1,000,000 rows over 30 days.

Fills a fresh SQLite database (or PostgreSQL with --pg) in batches, starts a real
`modelyard serve` on it and times the model page: the first render right after start (it
waits for the closed days to be summed into the in-memory roll-up, which the server starts
doing in the background at start-up), then, after SETTLE_S, warm renders. Goal: under 300 ms.

    .venv/bin/python -m bench.model_page [--rows N] [--pg]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import statistics
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert, text
from tests.e2e.server import start_gateway

from bench import postgres
from modelyard.store import Store, database_url
from modelyard.store.records import Generation
from modelyard.store.rows import generation_to_row
from modelyard.store.tables import generations

MODEL = "google/gemma-3-270m"
OTHERS = ("anthropic/claude-haiku-4.5", "anthropic/claude-3.5-haiku")
BATCH = 20_000
WARM_RUNS = 30
SETTLE_S = 10  # lets the start-up warm-up of the other models' roll-ups finish


def _template() -> dict[str, Any]:
    now = datetime.now(UTC)
    return generation_to_row(
        Generation(
            id="x",
            created_at=now,
            app_id=None,
            key_id=None,
            model=MODEL,
            provider=None,
            endpoint=None,
            status=200,
        )
    )


def _rows(count: int, start: int, apps: list[str], now: datetime) -> list[dict[str, Any]]:
    rng = random.Random(start)
    base = _template()
    span = 30 * 24 * 3600
    rows = []
    for i in range(start, start + count):
        model = MODEL if rng.random() < 0.7 else rng.choice(OTHERS)
        provider = "local" if model == MODEL else rng.choice(("anthropic", "openrouter"))
        roll = rng.random()
        status = 200 if roll < 0.95 else (500 if roll < 0.98 else 429)
        completion = rng.randint(10, 400) if status == 200 else 0
        row = dict(base)
        row.update(
            id=f"gen-bench-{i}",
            created_at=now - timedelta(seconds=rng.random() * span),
            app_id=rng.choice(apps),
            model=model,
            provider=provider,
            endpoint=f"{provider}/{model}",
            status=status,
            tokens_prompt=rng.randint(20, 2000),
            tokens_completion=completion,
            latency_ms=rng.uniform(40, 900),
            generation_time_ms=completion * rng.uniform(5, 30),
            streamed=rng.random() < 0.8,
            x_title=rng.choice((None, "Writer", "Support Bot", "Evals")),
            params={"temperature": round(rng.uniform(0, 1.2), 2), "max_tokens": 256},
        )
        rows.append(row)
    return rows


async def fill(url: str, total: int) -> float:
    store = await Store.open(url)
    try:
        apps = [(await store.create_app(f"bench-app-{n}")).id for n in range(8)]
        now = datetime.now(UTC)
        started = time.perf_counter()
        engine = store._engine  # the bench writes behind the Store's back, in big batches
        for start in range(0, total, BATCH):
            rows = _rows(min(BATCH, total - start), start, apps, now)
            async with engine.begin() as conn:
                await conn.execute(insert(generations), rows)
        seconds = time.perf_counter() - started
        # What autovacuum would have done on a ledger that grew over a month; without it
        # PostgreSQL plans against the statistics of an empty table.
        async with engine.begin() as conn:
            await conn.execute(text("ANALYZE generations"))
        return seconds
    finally:
        await store.close()


def _ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000


def measure(base_url: str, path: str) -> tuple[float, list[float]]:
    with httpx.Client(base_url=base_url, timeout=120) as client:
        started = time.perf_counter()
        client.get(path).raise_for_status()
        cold = _ms(started)
        time.sleep(SETTLE_S)
        warm = []
        for _ in range(WARM_RUNS):
            started = time.perf_counter()
            client.get(path).raise_for_status()
            warm.append(_ms(started))
    return cold, warm


@contextlib.contextmanager
def database(data_dir: Path, pg: bool) -> Iterator[str | None]:
    if not pg:
        yield None
        return
    with postgres.fresh_database() as url:
        yield url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--pg", action="store_true", help="PostgreSQL instead of SQLite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, database(Path(tmp), args.pg) as pg_url:
        data_dir = Path(tmp)
        url = pg_url or database_url(data_dir, None)
        seconds = asyncio.run(fill(url, args.rows))
        print(f"inserted {args.rows:,} rows in {seconds:.1f}s ({args.rows / seconds:,.0f}/s)")
        env = {"MODELYARD_DATABASE_URL": pg_url} if pg_url else None
        gateway = start_gateway(data_dir, env=env)
        try:
            for path in (f"/models/{MODEL}", f"/v1/models/{MODEL}/endpoints"):
                cold, warm = measure(gateway.base_url, path)
                warm.sort()
                p95 = warm[int(len(warm) * 0.95) - 1]
                print(
                    f"GET {path}: first {cold:.0f} ms; warm (n={len(warm)}) "
                    f"p50 {statistics.median(warm):.1f} ms, p95 {p95:.1f} ms, max {warm[-1]:.1f} ms"
                )
                print("  all warm runs (ms):", " ".join(f"{w:.0f}" for w in warm))
        finally:
            gateway.stop()


if __name__ == "__main__":
    main()
