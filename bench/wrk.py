"""Run Debian's `wrk` with bench/post.lua and read the JSON line the script prints."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

SCRIPT = Path(__file__).with_name("post.lua")


@dataclass(frozen=True)
class WrkResult:
    requests: int
    rate: float  # requests/s
    p50_ms: float
    p99_ms: float
    p999_ms: float
    errors: int  # non-2xx answers, socket errors and timeouts

    @property
    def duration_s(self) -> float:
        return self.requests / self.rate if self.rate else 0.0


def available() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(
    url: str,
    body: bytes,
    *,
    connections: int,
    duration_s: float,
    threads: int = 1,
    auth: str | None = None,
    headers: dict[str, str] | None = None,
) -> WrkResult:
    """`auth`: a bearer key; `headers`: any other request headers."""
    env = {
        **os.environ,
        "BENCH_BODY": body.decode(),
        "BENCH_AUTH": auth or "",
        "BENCH_HEADERS": "".join(f"{name}: {value}\n" for name, value in (headers or {}).items()),
    }
    command = [
        "wrk",
        f"-t{min(threads, connections)}",
        f"-c{connections}",
        f"-d{max(1, round(duration_s))}s",  # wrk takes whole seconds
        "--timeout",
        "5s",
        "-s",
        str(SCRIPT),
        url,
    ]
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    line = next((ln for ln in out.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{out}")
    raw = json.loads(line.removeprefix("BENCH_JSON "))
    return WrkResult(
        requests=raw["requests"],
        rate=raw["requests"] / (raw["duration_us"] / 1e6),
        p50_ms=raw["p50_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        p999_ms=raw["p999_us"] / 1000,
        errors=raw["non_2xx"] + raw["socket_errors"] + raw["timeouts"],
    )
