"""`make bench`: every gateway-overhead scenario against the fake upstream, one run, and
the results table written into BENCHMARKS.md.

    .venv/bin/python -m bench.run [--quick] [--no-postgres] [--no-write]

`--quick` shortens every scenario (a smoke test; its numbers are not for the table).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench import postgres, report, scenarios, wrk
from bench.procs import (
    REDIS_URL,
    MachineCpu,
    fake_upstream,
    gateway,
    rss_mb,
    tree_cpu_s,
    tree_rss_mb,
)
from bench.scenarios import WARMUP_S, Row, Side
from bench.soak import Point, soak

BENCHMARKS = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"
CHUNKS = 200
# The targets: added latency at 1 connection (ms), requests/s at 64 connections.
ONE_CONNECTION = {"p50": 1.0, "p99": 3.0}
SIXTY_FOUR = {"rate": 2500}
SCALE_OUT = "PostgreSQL ledger + Redis limits"


@dataclass(frozen=True)
class Plan:
    """How long each scenario runs."""

    short_s: float = 9  # non-streaming, 1 connection (per side, over all rounds)
    long_s: float = 12  # non-streaming, 64 connections
    rate_s: float = 30  # the fixed-rate scenario
    soak_requests: int = 200_000

    @classmethod
    def quick(cls) -> Plan:
        return cls(short_s=3, long_s=3, rate_s=3, soak_requests=5_000)


def run(plan: Plan, use_postgres: bool, work: Path) -> tuple[list[Row], list[str]]:
    with fake_upstream(CHUNKS) as upstream:
        direct = Side(upstream.port, pid=upstream.process.pid)
        main = _main_gateway(plan, work, upstream.port, upstream.process.pid)
        rows, notes = main.rows, main.notes
        rows += _workers(plan, work, upstream.port, main)
        if use_postgres:
            rows += _postgres(plan, work, upstream.port, direct)
        else:
            notes.append(
                "PostgreSQL or Redis was not reachable (or --no-postgres): no PostgreSQL rows."
            )
    return rows, notes


@dataclass
class MainRun:
    rows: list[Row]
    notes: list[str]
    direct64: wrk.WrkResult  # the upstream direct, 64 connections


def _main_gateway(plan: Plan, work: Path, upstream_port: int, upstream_pid: int) -> MainRun:
    """One worker, SQLite: every scenario on one gateway, the soak last."""
    direct = Side(upstream_port, pid=upstream_pid)
    rows: list[Row] = []
    with gateway(work / "sqlite", upstream_port) as gw:
        side = Side(gw.port, gw.app_key, gw.pid)
        idle_rss = rss_mb(gw.pid)
        print(f"gateway pid {gw.pid}: {idle_rss:.0f} MB at start; upstream port {upstream_port}")
        found, _, _ = scenarios.nonstream(
            "non-streaming, 1 connection", direct, side, 1, plan.short_s, ONE_CONNECTION
        )
        rows += _progress(found)
        found, direct64, _ = scenarios.nonstream(
            "non-streaming, 64 connections", direct, side, 64, plan.long_s, SIXTY_FOUR
        )
        rows += _progress(found)
        rows += _progress(scenarios.streaming(direct, side, CHUNKS))
        rows += _progress(scenarios.steady_rate(direct, side, 1000, plan.rate_s))
        soaked = soak(side, gw.pid, upstream_pid, plan.soak_requests)
        rows += _progress(soaked.rows)
    return MainRun(rows, _notes(idle_rss, soaked.points, plan), direct64)


def _workers(plan: Plan, work: Path, upstream_port: int, main: MainRun) -> list[Row]:
    """A fresh one-worker gateway and a `--workers 2` one, side by side, measured in
    alternating rounds; with the CPU time the gateway's processes used, since on a small
    machine the load generator and the upstream take cores the second worker would need."""
    runs: dict[int, list[scenarios.WorkersRun]] = {1: [], 2: []}
    with (
        gateway(work / "workers-1", upstream_port, workers=1) as one,
        gateway(work / "workers-2", upstream_port, workers=2) as two,
    ):
        gateways = {1: one, 2: two}
        for gw in gateways.values():
            scenarios.throughput(Side(gw.port, gw.app_key), 64, WARMUP_S, warm_up=False)
        for round_ in range(scenarios.ROUNDS):
            for workers in (1, 2) if round_ % 2 == 0 else (2, 1):
                gw = gateways[workers]
                side = Side(gw.port, gw.app_key)
                cpu_before, machine_before = tree_cpu_s(gw.pid), MachineCpu.now()
                found = scenarios.throughput(
                    side, 64, plan.long_s / scenarios.ROUNDS, warm_up=False
                )
                runs[workers].append(
                    scenarios.WorkersRun(
                        found,
                        tree_rss_mb(gw.pid),
                        (tree_cpu_s(gw.pid) - cpu_before) / found.duration_s,
                        MachineCpu.now().steal_share(machine_before),
                    )
                )
    return _progress(
        scenarios.workers_rows(
            main.direct64, scenarios.median_run(runs[1]), scenarios.median_run(runs[2])
        )
    )


def _postgres(plan: Plan, work: Path, upstream_port: int, direct: Side) -> list[Row]:
    """The scale-out set-up: the ledger on PostgreSQL, the rate limits in Redis."""
    rows: list[Row] = []
    with (
        postgres.fresh_database() as url,
        gateway(work / "postgres", upstream_port, database_url=url, redis_url=REDIS_URL) as gw,
    ):
        side = Side(gw.port, gw.app_key, gw.pid)
        for connections, limits in ((1, ONE_CONNECTION), (64, SIXTY_FOUR)):
            found, _, _ = scenarios.nonstream(
                f"{SCALE_OUT}: non-streaming, {connections} connection"
                + ("s" if connections > 1 else ""),
                direct,
                side,
                connections,
                plan.short_s if connections == 1 else plan.long_s,
                limits,
            )
            rows += _progress(found)
        rows += _progress(
            scenarios.steady_rate(direct, side, 1000, plan.rate_s, prefix=f"{SCALE_OUT}: ")
        )
    return rows


def _progress(rows: list[Row]) -> list[Row]:
    for row in rows:
        print(f"  {row.scenario} | {row.measure}: {row.direct} | {row.gateway} | {row.compared}")
    return rows


def _notes(idle_rss: float, points: list[Point], plan: Plan) -> list[str]:
    step = max(1, len(points) // 12)
    series = ", ".join(f"{p.gateway_mb:.0f} ({p.ledger_queue:,})" for p in points[::step])
    return [
        "Non-streaming rows: `wrk` (1 thread, `bench/post.lua`), each side after a 2 s "
        "warm-up; latency is wrk's, per request. Streaming, fixed-rate and soak rows: "
        "`bench/loadgen.py` (raw asyncio on uvloop); its fixed-rate mode is open-loop "
        "(requests never wait for earlier answers), latency measured from each "
        "request's start.",
        f"Gateway RSS right after start, idle: {idle_rss:.0f} MB (no embedded model: "
        "`MODELYARD_LOAD_LOCAL=0`). The soak runs last on the same, already warm gateway; "
        f"its RSS in MB (ledger queue in rows) every {step * 0.5:g} s: {series}.",
        "`--workers 2` is compared with a fresh one-worker gateway running beside it, in "
        "alternating rounds (medians). "
        "Its RSS is uvicorn's supervisor plus two workers, each a full gateway on the same "
        "SQLite ledger. With the embedded model each worker holds its own copy: checked by "
        "hand, `--workers 2` on the built-in model had two workers of ~580 MB RSS each and "
        "a 156 MB supervisor (it loads and unloads the model once while it prepares).",
        f"Durations: 1-connection {plan.short_s:g} s and 64-connection {plan.long_s:g} s "
        f"per side, in {scenarios.ROUNDS} rounds that alternate direct and gateway (each "
        "figure is the median of the rounds; requests and errors are totals); streaming "
        "TTFC over 400 sequential streams, chunks/s over 8 s.",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-write", action="store_true", help="print, leave BENCHMARKS.md")
    args = parser.parse_args()
    if not wrk.available():
        sys.exit("wrk is not installed: `apt-get install -y wrk` (make bench does it)")
    plan = Plan.quick() if args.quick else Plan()
    use_postgres = not args.no_postgres and postgres.available() and postgres.redis_available()
    machine = report.Machine.probe()
    load_start = report.load()
    cpu_start = MachineCpu.now()
    print(f"load average at start: {load_start}")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="modelyard-bench-") as work:
        rows, notes = run(plan, use_postgres, Path(work))
    command = "make bench" + (" (bench.run --quick)" if args.quick else "")
    text = report.section(
        rows,
        notes,
        machine,
        command,
        load_start,
        report.load(),
        (time.monotonic() - started) / 60,
        MachineCpu.now().steal_share(cpu_start),
    )
    print(text)
    if not args.no_write:
        report.write_section(BENCHMARKS, text)
        print(f"wrote {BENCHMARKS}")


if __name__ == "__main__":
    main()
