"""The processes under test: the fake upstream, `modelyard serve` wired to it through a
catalog file with an app key from the admin API, and their memory (VmRSS)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from tests.e2e.server import RunningGateway, free_port, start_gateway

MODEL = "bench/fake-model"
CATALOG = """\
[[providers]]
id = "fake"
name = "Fake upstream (bench)"
kind = "openai"
base_url = "http://127.0.0.1:{port}/v1"

[[models]]
id = "{model}"
name = "Bench: fake model"
context_length = 8192
max_output = 4096
# Rate limits that a benchmark never reaches: they cost their bookkeeping, never a 429.
# Every bench gateway has them (the issue: all scenarios with the real features on).
rpm = 100000000
tpm = 100000000000

[[models.endpoints]]
provider = "fake"
upstream_model = "fake-model"
price = {{ prompt = 1.0, completion = 2.0 }}
"""
# The machine's Redis, for the scale-out runs' shared rate limits.
REDIS_URL = "redis://127.0.0.1:6379/0"
# No embedded model (MODELYARD_LOAD_LOCAL=0) and no bootstrap app: the bench makes its own.
GATEWAY_ENV = {"MODELYARD_LOAD_LOCAL": "0", "MODELYARD_BOOTSTRAP_APP": "0"}


@dataclass
class Upstream:
    process: subprocess.Popen[bytes]
    port: int


@contextlib.contextmanager
def fake_upstream(chunks: int) -> Iterator[Upstream]:
    port = free_port()
    command = [sys.executable, "-m", "bench.upstream", "--port", str(port)]
    process = subprocess.Popen([*command, "--chunks", str(chunks)])
    try:
        _wait_healthy(f"http://127.0.0.1:{port}/health", process)
        yield Upstream(process, port)
    finally:
        process.terminate()
        process.wait(10)


@dataclass
class Gateway:
    running: RunningGateway
    port: int
    app_key: str

    @property
    def pid(self) -> int:
        return self.running.process.pid


@contextlib.contextmanager
def gateway(
    data_dir: Path,
    upstream_port: int,
    *,
    workers: int = 1,
    database_url: str | None = None,
    redis_url: str | None = None,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Gateway]:
    """A gateway routing MODEL to the fake upstream, with a real app key for it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    catalog = data_dir / "bench-catalog.toml"
    catalog.write_text(CATALOG.format(port=upstream_port, model=MODEL))
    env = {**GATEWAY_ENV, **(extra_env or {})}
    if database_url:
        env["MODELYARD_DATABASE_URL"] = database_url
    if redis_url:
        env["MODELYARD_REDIS_URL"] = redis_url
    args = ["--catalog", str(catalog), "--workers", str(workers)]
    running = start_gateway(data_dir, extra_args=args, env=env)
    try:
        port = int(running.base_url.rsplit(":", 1)[1])
        yield Gateway(running, port, _app_key(running))
    finally:
        running.stop()


def _app_key(running: RunningGateway) -> str:
    """An app "bench" with the fake model attached: its key, as a user would get it."""
    headers = {"Authorization": f"Bearer {running.admin_key}"}
    with httpx.Client(base_url=running.base_url, headers=headers, timeout=30) as admin:
        admin.post("/admin/apps", json={"name": "bench"}).raise_for_status()
        created = admin.post("/admin/apps/bench/models", json={"model": MODEL})
        created.raise_for_status()
        return str(created.json()["config"]["INFERENCE_KEY"])


def _wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the process exited with {process.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout:g} s")


# -- memory ---------------------------------------------------------------------------------
def rss_mb(pid: int) -> float:
    """VmRSS of one process, in MB (10^6 bytes); 0 when it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024 / 1e6
    return 0.0


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants (uvicorn's workers are children of its supervisor)."""
    tree = [pid]
    for member in tree:  # grows as it goes: breadth first
        for task in Path(f"/proc/{member}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                tree.extend(int(child) for child in task.read_text().split())
    return tree


def tree_rss_mb(pid: int) -> float:
    return sum(rss_mb(member) for member in process_tree(pid))


# -- CPU ------------------------------------------------------------------------------------
TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process (all its threads); 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_S


def tree_cpu_s(pid: int) -> float:
    return sum(cpu_s(member) for member in process_tree(pid))


@dataclass(frozen=True)
class MachineCpu:
    """/proc/stat's totals: all CPU time, and the time the hypervisor ran other guests."""

    total_s: float
    steal_s: float

    @classmethod
    def now(cls) -> MachineCpu:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        # user nice system idle iowait irq softirq steal guest guest_nice (guest is in user)
        return cls(sum(values[:8]) / TICKS_PER_S, values[7] / TICKS_PER_S)

    def steal_share(self, since: MachineCpu) -> float:
        elapsed = self.total_s - since.total_s
        return (self.steal_s - since.steal_s) / elapsed if elapsed > 0 else 0.0


def child_rss(module: str, argument: Path) -> tuple[float, float]:
    """RSS (MB) before and after a load, as `python -m MODULE --rss-child ARGUMENT` prints
    them (a fresh process, so nothing loaded earlier counts)."""
    out = subprocess.run(
        [sys.executable, "-m", module, "--rss-child", str(argument)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return float(out[0]), float(out[1])
