"""Where the gateway's time goes under 64 connections of non-streaming load: py-spy samples
the `modelyard serve` process while wrk drives it through the fake upstream.

    .venv/bin/python -m bench.profile_gateway [--seconds 15] [--out bench/results]

Writes OUT/profile.txt (py-spy raw: collapsed stacks, per thread) and OUT/profile.svg (a
flame graph of a second, equally long sample), and prints Markdown tables: CPU samples per
thread, main-thread self time per package and per function, and the gateway's own
functions by inclusive time. py-spy runs --nonblocking, so the gateway is not paused.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import modelyard
from bench import wrk
from bench.procs import REDIS_URL, fake_upstream, gateway
from bench.scenarios import Side, request_body

PY_SPY = Path(sys.executable).with_name("py-spy")


@dataclass
class Profile:
    """Collapsed stacks: `thread (tid): name;frame;frame… count`, frames `fn (file:line)`."""

    total: int = 0
    threads: Counter[str] = field(default_factory=Counter)
    main_total: int = 0
    self_by_function: Counter[str] = field(default_factory=Counter)
    self_by_package: Counter[str] = field(default_factory=Counter)
    inclusive: Counter[str] = field(default_factory=Counter)

    @classmethod
    def parse(cls, text: str) -> Profile:
        profile = cls()
        # --nonblocking may read a frame mid-update: split on "\n" only (a garbled name
        # may hold "\r") and skip a line that does not end in a count.
        for line in text.split("\n"):
            stack, _, count_text = line.rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            count = int(count_text)
            thread, *frames = stack.split(";")
            name = thread.split(": ", 1)[-1].split(" (")[0]
            if not name.isprintable() or not name.strip():
                continue  # a garbled sample
            profile.total += count
            profile.threads[name] += count
            if name != "MainThread" or not frames:
                continue
            profile.main_total += count
            profile.self_by_function[frames[-1]] += count
            profile.self_by_package[package(frames[-1])] += count
            for frame in set(frames):
                profile.inclusive[frame] += count
        return profile


# py-spy shortens a path to its file name when that is unambiguous (`recorder.py`).
OUR_FILES = {
    path.name: f"modelyard/{path.relative_to(Path(modelyard.__file__).parent)}"
    for path in Path(modelyard.__file__).parent.rglob("*.py")
}


def package(frame: str) -> str:
    """`handle (modelyard/api/chat.py:72)` → `modelyard/api/chat.py`; `x (aiohttp/y.py:1)`
    → `aiohttp`; the standard library by module (`asyncio`, `threading`)."""
    path = frame.rpartition(" (")[2].rstrip(")").rpartition(":")[0]
    if path.startswith("modelyard/"):
        return path
    if "/" not in path and path in OUR_FILES:
        return OUR_FILES[path]
    head = path.split("/", 1)[0]
    return head.removesuffix(".py") or path


def _pct(count: int, total: int) -> str:
    return f"{100 * count / total:.1f}%" if total else "n/a"


def markdown(profile: Profile, top: int = 15) -> str:
    out = ["CPU samples by thread (all threads, idle excluded):", ""]
    out += ["| thread | share |", "|---|---|"]
    threads: Counter[str] = Counter()
    for name, count in profile.threads.items():
        threads["aiosqlite workers" if name.startswith("Thread-") else name] += count
    out += [f"| {name} | {_pct(n, profile.total)} |" for name, n in threads.most_common()]
    main = profile.main_total
    out += ["", "Main thread (the event loop), self time by package or modelyard module:", ""]
    out += ["| package | self |", "|---|---|"]
    out += [f"| {p} | {_pct(n, main)} |" for p, n in profile.self_by_package.most_common(top)]
    out += ["", "Main thread, self time by function (C calls count to their caller):", ""]
    out += ["| function | self |", "|---|---|"]
    out += [f"| `{f}` | {_pct(n, main)} |" for f, n in profile.self_by_function.most_common(top)]
    ours = Counter({f: n for f, n in profile.inclusive.items() if "(modelyard/" in f})
    for entry in ("main (modelyard/", "serve (modelyard/", "<module> (modelyard/"):
        for frame in [f for f in ours if f.startswith(entry)]:
            del ours[frame]
    out += ["", "Main thread, modelyard functions by inclusive time:", ""]
    out += ["| function | inclusive |", "|---|---|"]
    out += [f"| `{f}` | {_pct(n, main)} |" for f, n in ours.most_common(top)]
    return "\n".join(out)


def _py_spy(pid: int, seconds: float, output: Path, fmt: str) -> None:
    command = [str(PY_SPY), "record", "--pid", str(pid), "--duration", f"{seconds:g}"]
    command += ["--rate", "250", "--nonblocking", "--threads", "--format", fmt]
    command += ["--output", str(output)]
    if fmt == "raw":
        command.append("--function")  # one entry per function, not per line
    subprocess.run(command, check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument(
        "--redis", action="store_true", help="rate limits in Redis (127.0.0.1:6379)"
    )
    args = parser.parse_args()
    if not PY_SPY.exists() or not wrk.available():
        sys.exit(f"needs {PY_SPY} (pip install py-spy) and wrk (apt-get install -y wrk)")
    args.out.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="modelyard-profile-") as work,
        fake_upstream(200) as upstream,
        gateway(Path(work), upstream.port, redis_url=REDIS_URL if args.redis else None) as gw,
    ):
        side = Side(gw.port, gw.app_key)
        env = {**os.environ, "BENCH_BODY": request_body(False).decode(), "BENCH_AUTH": gw.app_key}
        load_s = 2 * args.seconds + 4
        command = ["wrk", "-t1", "-c64", f"-d{load_s:g}s", "-s", str(wrk.SCRIPT), side.url]
        load = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
        time.sleep(2)  # warm-up
        _py_spy(gw.pid, args.seconds, args.out / "profile.txt", "raw")
        _py_spy(gw.pid, args.seconds, args.out / "profile.svg", "flamegraph")
        result = load.communicate()[0]
    rate = next((ln for ln in result.splitlines() if ln.startswith("Requests/sec")), "")
    profile = Profile.parse((args.out / "profile.txt").read_text(errors="replace"))
    print(f"wrk while sampled: {rate.strip()} (64 connections); {profile.total} samples\n")
    print(markdown(profile))
    print(f"\nraw stacks: {args.out / 'profile.txt'}; flame graph: {args.out / 'profile.svg'}")
    if shutil.which("uptime"):
        print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    main()
