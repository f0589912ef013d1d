"""The server's edge under abuse, with the default settings, on loopback: a 10 MB admin
body from urllib, a 50 MB header, then 200 connections trickling a head and 200 trickling
a body (a byte a second each, for 35 s). Prints the answers, the server's peak RSS growth
(VmHWM) and its open descriptors over time. Bounded: about a minute.

    .venv/bin/python -m bench.edge_abuse [--src OTHER_CHECKOUT/src]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.e2e.server import RunningGateway, start_gateway

ADMIN = "bench-admin"
MiB = 1024 * 1024


class Probe:
    def __init__(self, gateway: RunningGateway) -> None:
        self.gateway = gateway
        self.pid = gateway.process.pid
        self.port = int(gateway.base_url.rsplit(":", 1)[1])

    def mib(self, field: str) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
        raise LookupError(field)

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=30)


def admin_body(probe: Probe) -> None:
    peak = probe.mib("VmHWM")
    request = urllib.request.Request(
        probe.gateway.base_url + "/admin/apps",
        data=b" " * (10 * MiB),
        headers={"Authorization": f"Bearer {ADMIN}"},
    )
    try:
        outcome = str(urllib.request.urlopen(request, timeout=30).status)
    except urllib.error.HTTPError as error:
        outcome = str(error.code)
    except OSError as error:
        outcome = repr(error)
    growth = probe.mib("VmHWM") - peak
    print(f"10 MB admin body (urllib): {outcome}; peak RSS +{growth:.1f} MiB")


def big_header(probe: Probe) -> None:
    peak = probe.mib("VmHWM")
    sock = probe.connect()

    def send() -> None:
        try:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer ")
            for _ in range(50):
                sock.sendall(b"a" * MiB)
        except OSError:
            pass

    started = time.monotonic()
    threading.Thread(target=send, daemon=True).start()
    try:
        first = sock.recv(64)
    except OSError as error:
        first = repr(error).encode()
    elapsed = time.monotonic() - started
    sock.close()
    time.sleep(1)
    growth = probe.mib("VmHWM") - peak
    print(f"50 MB header: {first[:44]!r} after {elapsed:.2f} s; peak RSS +{growth:.1f} MiB")


def tricklers(probe: Probe) -> None:
    baseline = probe.fds()
    heads = [probe.connect() for _ in range(200)]
    for sock in heads:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: bench\r\nX-Slow: ")
    bodies = [probe.connect() for _ in range(200)]
    for sock in bodies:
        sock.sendall(
            b"POST /admin/apps HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer "
            + ADMIN.encode()
            + b"\r\nContent-Length: 10000\r\n\r\n"
        )
    started = time.monotonic()
    marks = dict.fromkeys((5, 13, 25, 33), 0)
    while (elapsed := time.monotonic() - started) < 35:
        for sock in heads + bodies:
            with contextlib.suppress(OSError):
                sock.send(b"a")
        for mark in marks:
            if elapsed >= mark and not marks[mark]:
                marks[mark] = probe.fds()
        time.sleep(1)
    for sock in heads + bodies:
        sock.close()
    counts = ", ".join(f"after {mark} s: {count}" for mark, count in marks.items())
    print(f"open fds: {baseline} before 200 trickling heads + 200 trickling bodies; {counts}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, help="another checkout's src/ to run instead")
    args = parser.parse_args()
    env = {"MODELYARD_LOAD_LOCAL": "0"}
    if args.src:
        env["PYTHONPATH"] = f"{args.src.resolve()}:{os.getcwd()}"
    with tempfile.TemporaryDirectory(prefix="modelyard-edge-") as work:
        gateway = start_gateway(Path(work), admin_key=ADMIN, env=env)
        try:
            probe = Probe(gateway)
            admin_body(probe)
            big_header(probe)
            tricklers(probe)
        finally:
            gateway.stop()


if __name__ == "__main__":
    main()
