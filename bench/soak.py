"""Memory over many requests: the gateway's VmRSS (and its ledger queue, read from
/metrics) sampled every 0.5 s while one long closed-loop run goes through it."""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass

import httpx
import uvloop

from bench.loadgen import Sample, closed_loop
from bench.procs import rss_mb, tree_rss_mb
from bench.scenarios import Row, Side, max_target

QUEUE_DEPTH = re.compile(r"^modelyard_ledger_queue_depth (\S+)$", re.MULTILINE)
DRAIN_WAIT_S = 60.0


@dataclass(frozen=True)
class Point:
    at_s: float
    gateway_mb: float
    upstream_mb: float
    ledger_queue: int


@dataclass
class Soak:
    rows: list[Row]
    points: list[Point]


async def _queue_depth(client: httpx.AsyncClient) -> int:
    found = QUEUE_DEPTH.search((await client.get("/metrics")).text)
    return int(float(found.group(1))) if found else -1


def soak(gateway: Side, gateway_pid: int, upstream_pid: int, total: int) -> Soak:
    """`total` requests back to back on 32 connections; then wait for the ledger to drain."""
    points: list[Point] = []

    async def measure() -> tuple[Sample, float, float]:
        started = time.perf_counter()
        client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{gateway.port}", timeout=10)

        async def sample() -> None:
            depth = await _queue_depth(client)
            at = time.perf_counter() - started
            points.append(Point(at, tree_rss_mb(gateway_pid), rss_mb(upstream_pid), depth))

        async def sampler() -> None:
            while True:
                await sample()
                await asyncio.sleep(0.5)

        async with client:
            task = asyncio.create_task(sampler())
            try:
                run = await closed_loop(gateway.target(stream=False), 32, total=total)
            finally:
                task.cancel()
            await sample()
            drained_at = time.perf_counter()
            while (
                await _queue_depth(client) > 0 and time.perf_counter() - drained_at < DRAIN_WAIT_S
            ):
                await asyncio.sleep(0.2)
            return run, time.perf_counter() - drained_at, tree_rss_mb(gateway_pid)

    run, drain_s, drained_mb = uvloop.run(measure())
    return Soak(_rows(total, run, points, drain_s, drained_mb), points)


def _rows(
    total: int, run: Sample, points: list[Point], drain_s: float, drained_mb: float
) -> list[Row]:
    scenario = f"{total:,} requests in a row"
    first, last = points[0], points[-1]
    g_max = max(p.gateway_mb for p in points)
    u_max = max(p.upstream_mb for p in points)
    growth = (last.gateway_mb - first.gateway_mb) / first.gateway_mb
    u_growth = (last.upstream_mb - first.upstream_mb) / first.upstream_mb
    return [
        Row(
            scenario,
            "RSS start / max / end, MB (direct: the fake upstream's)",
            f"{first.upstream_mb:.0f} / {u_max:.0f} / {last.upstream_mb:.0f}",
            f"{first.gateway_mb:.0f} / {g_max:.0f} / {last.gateway_mb:.0f}",
            "",
            *max_target(g_max, 150, "≤ {:g} MB"),
        ),
        Row(
            scenario,
            "RSS growth, start to end",
            f"{u_growth:+.1%}",
            f"{growth:+.1%}",
            "",
            *max_target(growth * 100, 10, "≤ {:g}%"),
        ),
        Row(
            scenario,
            "ledger queue, rows: max / at the end",
            "",
            f"{max(p.ledger_queue for p in points):,} / {last.ledger_queue:,}",
            "",
        ),
        Row(
            scenario,
            "RSS once the ledger queue drained, MB (wait)",
            "",
            f"{drained_mb:.0f} ({drain_s:.1f} s)",
            "",
        ),
        Row(
            scenario,
            "requests/s (32 connections); errors",
            "",
            f"{run.rate:,.0f}; {run.errors}",
            "",
        ),
    ]
