"""Rate limits across replicas (real Redis), rate-limit headers, budgets, Redis down."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import RunningGateway, start_gateway

MODEL = "huggingface/smollm2-135m-instruct"
PRICED = """
[[models]]
id = "huggingface/smollm2-135m-instruct"
name = "SmolLM2 135M Instruct (priced for tests)"
context_length = 8192
max_output = 4096
rpm = 600
tpm = 1000000

[[models.endpoints]]
provider = "local"
upstream_model = "builtin:smollm2-135m-instruct"
price = { prompt = 1.5, completion = 4.0 }
"""
BODY = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RunningGateway]]:
    """Two gateway processes sharing one database and one Redis."""
    data = tmp_path_factory.mktemp("replicas")
    catalog = data / "catalog.toml"
    catalog.write_text(PRICED)
    env = {"MODELYARD_REDIS_URL": "redis://127.0.0.1:6379/0"}
    first = start_gateway(data, extra_args=["--catalog", str(catalog)], env=env)
    second = start_gateway(data, extra_args=["--catalog", str(catalog)], env=env)
    yield [first, second]
    first.stop()
    second.stop()


def new_key(gw: RunningGateway, **fields: object) -> str:
    headers = {"Authorization": f"Bearer {gw.admin_key}"}
    response = httpx.post(f"{gw.base_url}/admin/apps/default/keys", json=fields, headers=headers)
    assert response.status_code == 201, response.text
    return str(response.json()["key"])


async def burst(targets: list[RunningGateway], key: str, count: int) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=120) as client:
        return await asyncio.gather(
            *(
                client.post(
                    targets[i % len(targets)].api_url + "/chat/completions",
                    json=BODY,
                    headers={"Authorization": f"Bearer {key}"},
                )
                for i in range(count)
            )
        )


def test_two_replicas_enforce_one_limit_exactly(replicas: list[RunningGateway]) -> None:
    key = new_key(replicas[0], rpm=20, label=f"rpm-{secrets.token_hex(3)}")
    responses = asyncio.run(burst(replicas, key, 60))
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 20 and statuses.count(429) == 40, statuses
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.json()["error"]["code"] == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    served = next(r for r in responses if r.status_code == 200)
    assert served.headers["x-ratelimit-limit-requests"] == "20"
    assert int(served.headers["x-ratelimit-remaining-requests"]) < 20
    assert served.headers["x-ratelimit-limit-tokens"] == "1000000"


def test_spent_budget_is_402_with_the_limit_and_reset(replicas: list[RunningGateway]) -> None:
    key = new_key(replicas[0], limit=0.00002, limit_reset="daily")
    headers = {"Authorization": f"Bearer {key}"}
    first = httpx.post(
        replicas[0].api_url + "/chat/completions", json=BODY, headers=headers, timeout=60
    )
    assert first.status_code == 200  # nothing spent yet
    assert first.json()["usage"]["cost"] > 0.00001
    # The other replica sees the spend at once (the reservation is held in Redis).
    second = httpx.post(
        replicas[1].api_url + "/chat/completions", json=BODY, headers=headers, timeout=60
    )
    assert second.status_code == 402
    error = second.json()["error"]
    assert error["code"] == 402
    assert "$0.00002" in error["message"] and "daily limit resets at" in error["message"]


@pytest.mark.parametrize(("policy", "status"), [("open", 200), ("closed", 503)])
def test_redis_down_follows_the_failure_policy(tmp_path: Path, policy: str, status: int) -> None:
    gw = start_gateway(
        tmp_path,
        env={
            "MODELYARD_REDIS_URL": "redis://127.0.0.1:1/0",
            "MODELYARD_REDIS_FAILURE_POLICY": policy,
        },
    )
    try:
        response = httpx.post(
            gw.api_url + "/chat/completions",
            json=BODY,
            headers={"Authorization": f"Bearer {gw.app_key}"},
            timeout=60,
        )
        assert response.status_code == status, response.text
        metrics = httpx.get(gw.base_url + "/metrics").text
        assert "modelyard_rate_limiter_failures_total 1.0" in metrics
    finally:
        gw.stop()
    assert "Redis rate limiter unreachable" in gw.log()
