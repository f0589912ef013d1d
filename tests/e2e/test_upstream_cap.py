"""MODELYARD_UPSTREAM_MAX_CONNECTIONS caps the open connections to one upstream origin:
requests past the cap wait for a free connection instead of opening another."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.e2e.server import free_port, start_gateway
from tests.fakes.openai_stream import SlowOpenAI

CATALOG = """
[[providers]]
id = "fake"
kind = "openai"
base_url = "{base_url}"

[[models]]
id = "test/slow"
name = "Fake slow"
context_length = 32768
max_output = 8192

[[models.endpoints]]
provider = "fake"
upstream_model = "m"
price = {{ prompt = 1, completion = 1 }}
"""


def test_open_connections_to_an_upstream_are_capped_by_the_setting(tmp_path: Path) -> None:
    with SlowOpenAI(free_port()) as upstream:
        catalog = tmp_path / "catalog.toml"
        catalog.write_text(CATALOG.format(base_url=upstream.base_url("slow")))
        gateway = start_gateway(
            tmp_path,
            extra_args=["--catalog", str(catalog)],
            env={"MODELYARD_LOAD_LOCAL": "0", "MODELYARD_UPSTREAM_MAX_CONNECTIONS": "2"},
        )
        try:
            admin = {"Authorization": f"Bearer {gateway.admin_key}"}
            httpx.post(f"{gateway.base_url}/admin/apps", json={"name": "cap"}, headers=admin)
            created = httpx.post(
                f"{gateway.base_url}/admin/apps/cap/models",
                json={"model": "test/slow"},
                headers=admin,
            )
            assert created.status_code == 201, created.text
            made = httpx.post(f"{gateway.base_url}/admin/apps/cap/keys", json={}, headers=admin)
            assert made.status_code == 201, made.text
            key = made.json()["key"]

            def ask(_: int) -> int:
                response = httpx.post(
                    gateway.api_url + "/chat/completions",
                    json={"model": "test/slow", "messages": [{"role": "user", "content": "hi"}]},
                    headers={"Authorization": f"Bearer {key}"},
                    timeout=30,
                )
                return response.status_code

            with ThreadPoolExecutor(6) as pool:
                statuses = list(pool.map(ask, range(6)))
        finally:
            gateway.stop()
    # Each answer takes 0.5 s upstream: six at once would overlap without the cap.
    assert statuses == [200] * 6
    assert upstream.requests == 6
    assert upstream.peak_in_flight == 2
