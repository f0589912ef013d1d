"""Random bearer keys over the wire: refused with 429 past a per-client allowance, without
growing the server, while real keys keep working.

Loopback has a whole /8, so each test client speaks from an address of its own
(127.x.y.z); the server sees them as different clients, as it would different hosts.
"""

from __future__ import annotations

import re
import secrets
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import MODEL
from tests.e2e.server import RunningGateway, start_gateway

PER_MINUTE = 60  # the default allowance of failed lookups per client


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    running = start_gateway(tmp_path_factory.mktemp("unknown-keys"))
    yield running
    running.stop()


def client_from(address: str) -> httpx.Client:
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=30)


def chat(http: httpx.Client, gw: RunningGateway, key: str) -> httpx.Response:
    return http.post(
        gw.api_url + "/chat/completions",
        json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1},
        headers={"Authorization": f"Bearer {key}"},
    )


def test_many_bad_keys_from_one_client_get_429_and_good_keys_still_work(
    gateway: RunningGateway,
) -> None:
    with client_from("127.0.0.3") as attacker:
        assert chat(attacker, gateway, gateway.app_key).status_code == 200
        started = time.monotonic()
        answers = [chat(attacker, gateway, secrets.token_hex(16)) for _ in range(80)]
        # The allowance comes back at one failure a second: allow for the loop's own time.
        refilled = int(time.monotonic() - started) + 1
        statuses = [a.status_code for a in answers]
        assert statuses[:PER_MINUTE] == [401] * PER_MINUTE
        assert set(statuses[PER_MINUTE:]) <= {401, 429}
        assert statuses.count(429) >= 80 - PER_MINUTE - refilled
        refused = next(a for a in answers if a.status_code == 429)
        assert refused.json()["error"]["code"] == 429
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        # The key this client already used is still served to it.
        assert chat(attacker, gateway, gateway.app_key).status_code == 200
    with client_from("127.0.0.4") as neighbour:
        assert chat(neighbour, gateway, gateway.app_key).status_code == 200
        assert chat(neighbour, gateway, "not-a-key").status_code == 401


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def bad_keys_from(address: str, gw: RunningGateway, count: int) -> list[bytes]:
    """`count` requests with random keys, pipelined on one raw connection; their status lines."""
    port = int(gw.base_url.rsplit(":", 1)[1])
    requests = b"".join(
        b"GET /v1/key HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
        + secrets.token_hex(16).encode()
        + (b"\r\nConnection: close" if n == count - 1 else b"")
        + b"\r\n\r\n"
        for n in range(count)
    )
    with socket.create_connection(
        ("127.0.0.1", port), timeout=30, source_address=(address, 0)
    ) as s:
        s.sendall(requests)
        received = bytearray()
        while chunk := s.recv(65536):
            received += chunk
    # Each answer's body runs straight into the next status line.
    return re.findall(rb"HTTP/1\.1 (\d{3}) ", bytes(received))


def test_fifty_thousand_unknown_keys_do_not_grow_the_server(gateway: RunningGateway) -> None:
    # Each source address stays within its allowance, so every key reaches the key cache.
    per_client = PER_MINUTE - 5
    addresses = (f"127.1.{n // 250}.{n % 250 + 1}" for n in range(10_000))

    def flood(keys: int) -> None:
        while keys > 0:
            batch = min(per_client, keys)
            statuses = bad_keys_from(next(addresses), gateway, batch)
            assert statuses == [b"401"] * batch
            keys -= batch

    flood(15_000)  # past the unknown-key cache's 10,000 entries: it is as full as it gets
    before = rss_kib(gateway.process.pid)
    flood(50_000)
    grown_kib = rss_kib(gateway.process.pid) - before
    print(f"RSS {before} KiB after 15,000 unknown keys, +{grown_kib} KiB after 50,000 more")
    # Every key remembered would be ~14 MB here (22 MB per 80,000 keys before the bound).
    assert grown_kib < 6 * 1024, f"the server grew by {grown_kib} KiB over 50,000 unknown keys"
