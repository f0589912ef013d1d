"""Run a real `modelyard serve` process on 127.0.0.1 for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningGateway:
    process: subprocess.Popen[bytes]
    base_url: str
    admin_key: str
    log_path: Path
    data_dir: Path

    @property
    def app_key(self) -> str:
        """The key of the app "default" that a fresh install creates (model INFERENCE)."""
        return (self.data_dir / "default_app_key").read_text().strip()

    @property
    def api_url(self) -> str:
        return self.base_url + "/v1"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_gateway(
    data_dir: Path,
    *,
    admin_key: str = "test-admin-key",
    extra_args: list[str] | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> RunningGateway:
    port = free_port()
    log_path = data_dir / f"server-{port}.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    process_env = {**os.environ, "MODELYARD_ADMIN_KEY": admin_key, **(env or {})}
    for name in (
        "ANTHROPIC_API_KEY",
        "OPENROUTER_API_KEY",
        "HEROKU_INFERENCE_KEY",
        "AI_GATEWAY_API_KEY",
    ):
        if env is None or name not in env:
            process_env.pop(name, None)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "modelyard",
                "serve",
                "--port",
                str(port),
                "--data-dir",
                str(data_dir),
                *(extra_args or []),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=process_env,
        )
    gateway = RunningGateway(process, f"http://127.0.0.1:{port}", admin_key, log_path, data_dir)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gateway exited with {process.returncode}:\n{gateway.log()}")
        try:
            if httpx.get(gateway.base_url + "/health", timeout=1).status_code == 200:
                return gateway
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    gateway.stop(signal.SIGKILL)
    raise RuntimeError(f"gateway did not become healthy:\n{gateway.log()}")
