"""Two versions of the gateway in one run: the working tree against another checkout.

    git worktree add /tmp/base <commit>
    .venv/bin/python -m bench.ab /tmp/base/src [--redis] [--streaming] [--rounds 4]

Both gateways run side by side against one fake upstream; the rounds alternate which goes
first, and each figure is the median over the rounds. On this shared machine a change
shows more reliably in the gateway's CPU time per request (all its threads) than in
requests/s. The other checkout runs with this tree's virtual environment, so it must not
need packages this one lacks.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import uvloop

from bench.loadgen import closed_loop, percentile
from bench.procs import REDIS_URL, fake_upstream, gateway, tree_cpu_s
from bench.scenarios import Side, throughput


@dataclass
class Figures:
    values: dict[str, list[float]] = field(default_factory=dict)

    def add(self, name: str, value: float) -> None:
        self.values.setdefault(name, []).append(value)


def measure(side: Side, pid: int, streaming: bool, seconds: float) -> dict[str, float]:
    before = tree_cpu_s(pid)
    found = throughput(side, 64, seconds, warm_up=False)
    out = {
        "requests/s (64 connections)": found.rate,
        "CPU per request, µs": (tree_cpu_s(pid) - before) / found.requests * 1e6,
    }
    if streaming:

        async def streams() -> tuple[float, float]:
            target = side.target(stream=True)
            first = await closed_loop(target, 1, total=200)
            flow = await closed_loop(target, 8, duration_s=seconds)
            return percentile(first.first_content_s, 50) * 1000, flow.chunk_rate

        out["time to first chunk p50, ms"], out["relayed chunks/s (8 streams)"] = uvloop.run(
            streams()
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("other_src", type=Path, help="the other checkout's src/ directory")
    parser.add_argument("--redis", action="store_true", help="rate limits in Redis")
    parser.add_argument("--streaming", action="store_true", help="also streaming figures")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=4)
    args = parser.parse_args()
    redis = REDIS_URL if args.redis else None
    other_env = {"PYTHONPATH": f"{args.other_src.resolve()}:{os.getcwd()}"}
    figures = {"other": Figures(), "this": Figures()}
    with (
        tempfile.TemporaryDirectory(prefix="modelyard-ab-") as work,
        fake_upstream(200) as upstream,
        contextlib.ExitStack() as stack,
    ):
        gateways = {
            "other": stack.enter_context(
                gateway(Path(work) / "other", upstream.port, redis_url=redis, extra_env=other_env)
            ),
            "this": stack.enter_context(
                gateway(Path(work) / "this", upstream.port, redis_url=redis)
            ),
        }
        sides = {name: Side(gw.port, gw.app_key) for name, gw in gateways.items()}
        for side in sides.values():
            throughput(side, 64, 2, warm_up=False)
        for round_ in range(args.rounds):
            for name in ("other", "this") if round_ % 2 == 0 else ("this", "other"):
                found = measure(sides[name], gateways[name].pid, args.streaming, args.seconds)
                for measure_name, value in found.items():
                    figures[name].add(measure_name, value)
    print(f"| measure (median of {args.rounds} rounds) | {args.other_src} | this tree | ratio |")
    print("|---|---|---|---|")
    for name, values in figures["this"].values.items():
        other, this = statistics.median(figures["other"].values[name]), statistics.median(values)
        print(f"| {name} | {other:,.2f} | {this:,.2f} | {this / other:.3f} |")


if __name__ == "__main__":
    main()
