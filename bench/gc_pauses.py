"""The gateway's garbage-collection pauses under 64 connections of non-streaming load.

    .venv/bin/python -m bench.gc_pauses [--seconds 10]

Starts the gateway with bench/gc_hook on PYTHONPATH (a sitecustomize that times every
generation-1 and -2 collection), drives it with wrk through the fake upstream, and prints
count, total and longest pause per generation. A full (generation 2) collection stops the
event loop for as long as it takes to walk every tracked object.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

from bench import wrk
from bench.procs import fake_upstream, gateway
from bench.scenarios import Side, request_body, throughput

HOOK = Path(__file__).with_name("gc_hook")


def summary(log: str, seconds: float) -> str:
    pauses: dict[int, list[float]] = {}
    for line in log.splitlines():
        generation_text, ms_text = line.split()
        pauses.setdefault(int(generation_text), []).append(float(ms_text))
    lines = ["| generation | collections | total ms | % of the run | median ms | max ms |"]
    lines.append("|---|---|---|---|---|---|")
    for generation, found in sorted(pauses.items()):
        total = sum(found)
        lines.append(
            f"| {generation} | {len(found)} | {total:.0f} | {total / seconds / 10:.1f}% "
            f"| {statistics.median(found):.1f} | {max(found):.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="modelyard-gc-") as work:
        log = Path(work) / "gc.log"
        path = os.pathsep.join(filter(None, [str(HOOK), os.environ.get("PYTHONPATH")]))
        env = {"PYTHONPATH": path, "BENCH_GC_LOG": str(log)}
        with (
            fake_upstream(200) as upstream,
            gateway(Path(work) / "gw", upstream.port, extra_env=env) as gw,
        ):
            side = Side(gw.port, gw.app_key)
            throughput(side, 64, 2)  # warm-up; only the measured run is logged
            log.write_text("")
            body = request_body(stream=False)
            result = wrk.run_wrk(
                side.url, body, connections=64, duration_s=args.seconds, auth=side.key
            )
        print(f"{result.rate:,.0f} req/s, p99 {result.p99_ms:.1f} ms over {args.seconds:g} s")
        print(summary(log.read_text(), args.seconds))


if __name__ == "__main__":
    main()
