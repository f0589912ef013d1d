"""Honest bills: cut and failed streams are billed for what was relayed, spend limits are
reserved before the upstream is called (one process, and two sharing PostgreSQL and
Redis), and GET /v1/key shows spend the ledger writer has not written yet.

A real `modelyard serve` routes priced models to a fake OpenAI upstream that streams
slowly (tests/fakes/openai_stream.py); it is called with httpx and the openai SDK.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from modelyard.routing.filters import CHARS_PER_TOKEN
from tests.e2e.server import RunningGateway, free_port, start_gateway
from tests.fakes.openai_stream import DIES_AFTER, TOKENS, USAGE, SlowOpenAI
from tests.pg import fresh_database

PROMPT_PRICE, COMPLETION_PRICE = Decimal(20), Decimal(200)  # USD per million tokens
MESSAGES = [{"role": "user", "content": "Count slowly"}]
# The planner's prompt estimate for MESSAGES, billed when the upstream never reported a
# prompt count.
PROMPT_ESTIMATE = len("Count slowly") // CHARS_PER_TOKEN
FULL_COST = (USAGE["prompt_tokens"] * PROMPT_PRICE + TOKENS * COMPLETION_PRICE) / 1_000_000
# Long enough that nothing is written during a test: only unwritten rows can be seen.
SLOW_LEDGER = {"MODELYARD_LEDGER_BATCH_DELAY_S": "30"}


def catalog(upstream: SlowOpenAI) -> str:
    text = ""
    for scenario in ("slow", "dies", "nousage"):
        text += f"""
[[providers]]
id = "fake-{scenario}"
kind = "openai"
base_url = "{upstream.base_url(scenario)}"

[[models]]
id = "test/{scenario}"
name = "Fake {scenario}"
context_length = 32768
max_output = 8192

[[models.endpoints]]
provider = "fake-{scenario}"
upstream_model = "m"
price = {{ prompt = {PROMPT_PRICE}, completion = {COMPLETION_PRICE} }}
"""
    return text


@pytest.fixture(scope="module")
def upstream() -> Iterator[SlowOpenAI]:
    with SlowOpenAI(free_port()) as running:
        yield running


def start(data: Path, upstream: SlowOpenAI, env: dict[str, str]) -> RunningGateway:
    catalog_file = data / "catalog.toml"
    catalog_file.write_text(catalog(upstream))
    return start_gateway(
        data,
        extra_args=["--catalog", str(catalog_file)],
        env={"MODELYARD_LOAD_LOCAL": "0", **env},
    )


def admin(gw: RunningGateway, path: str, body: dict[str, Any]) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {gw.admin_key}"}
    response = httpx.post(f"{gw.base_url}/admin{path}", json=body, headers=headers)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def make_app(gw: RunningGateway, name: str) -> None:
    admin(gw, "/apps", {"name": name})
    for scenario in ("slow", "dies", "nousage"):
        admin(gw, f"/apps/{name}/models", {"model": f"test/{scenario}", "alias": scenario.upper()})


def new_key(gw: RunningGateway, **fields: object) -> str:
    return str(admin(gw, "/apps/billing/keys", fields)["key"])


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, upstream: SlowOpenAI
) -> Iterator[RunningGateway]:
    running = start(tmp_path_factory.mktemp("billing"), upstream, SLOW_LEDGER)
    make_app(running, "billing")
    yield running
    running.stop()


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def body(model: str, **fields: object) -> dict[str, object]:
    return {"model": model, "messages": MESSAGES, **fields}


def cut_stream(gw: RunningGateway, key: str, after: int, **fields: object) -> httpx.Response | str:
    """Read `after` content chunks, then close the connection. The generation id, or the
    response when the gateway refused the stream."""
    request = body("test/slow", stream=True, max_tokens=40, **fields)
    with httpx.stream(
        "POST", gw.api_url + "/chat/completions", json=request, headers=auth(key), timeout=30
    ) as response:
        if response.status_code != 200:
            response.read()
            return response
        seen = 0
        for line in response.iter_lines():
            if line.startswith("data: {") and json.loads(line[6:])["choices"][0]["delta"].get(
                "content"
            ):
                seen += 1
                if seen == after:
                    break
        return response.headers["x-generation-id"]


def generation(gw: RunningGateway, key: str, gen_id: str) -> dict[str, Any]:
    """The ledger row, once the gateway has noticed the client leave and recorded it."""
    deadline = time.monotonic() + 10
    while True:
        response = httpx.get(gw.api_url + "/generation", params={"id": gen_id}, headers=auth(key))
        if response.status_code == 200:
            data: dict[str, Any] = response.json()["data"]
            return data
        assert response.status_code == 404, response.text
        assert time.monotonic() < deadline, "the row of the cut stream was never recorded"
        time.sleep(0.05)


def key_info(gw: RunningGateway, key: str) -> dict[str, Any]:
    response = httpx.get(gw.api_url + "/key", headers=auth(key))
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def priced(prompt: int, completion: int) -> Decimal:
    return (prompt * PROMPT_PRICE + completion * COMPLETION_PRICE) / 1_000_000


def test_a_cut_stream_is_billed_for_the_tokens_it_relayed(gateway: RunningGateway) -> None:
    key = new_key(gateway, label="cut")
    spent_before = metered_cost(gateway, "test/slow")
    gen_id = cut_stream(gateway, key, after=5)
    assert isinstance(gen_id, str)
    row = generation(gateway, key, gen_id)
    assert row["cancelled"] is True and row["status"] == 499
    # What the gateway had sent on when it saw the client go: at least what was read.
    assert 5 <= row["tokens_completion"] < TOKENS
    assert row["tokens_prompt"] == PROMPT_ESTIMATE
    cost = priced(row["tokens_prompt"], row["tokens_completion"])
    assert Decimal(str(row["total_cost"])) == cost > 0
    assert key_info(gateway, key)["usage"] == pytest.approx(float(cost))
    # Metrics count the same bill as the ledger.
    assert metered_cost(gateway, "test/slow") - spent_before == pytest.approx(float(cost))


def metered_cost(gw: RunningGateway, model: str) -> float:
    """The Prometheus spend counter of `model` (0 before its first billed request)."""
    for line in httpx.get(gw.base_url + "/metrics").text.splitlines():
        if line.startswith("modelyard_cost_usd_total{") and f'model="{model}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_cut_streams_use_up_a_spend_limit(gateway: RunningGateway) -> None:
    limit = 0.02
    key = new_key(gateway, label="cut-limited", limit=limit)
    for _ in range(40):
        outcome = cut_stream(gateway, key, after=3)
        if isinstance(outcome, httpx.Response):
            break
        generation(gateway, key, outcome)  # recorded, so its hold is settled
    else:
        pytest.fail("40 cut streams never reached the key's $0.02 limit")
    assert outcome.status_code == 402, outcome.text
    assert "You requested up to 40 tokens" in outcome.json()["error"]["message"]
    spent = key_info(gateway, key)["usage"]
    # Refused because what is left is less than a 40-token stream may cost (~$0.0083).
    assert limit - 0.009 <= spent <= limit


def test_a_stream_that_fails_midway_is_billed_for_what_was_relayed(
    gateway: RunningGateway,
) -> None:
    key = new_key(gateway, label="dies")
    response = httpx.post(
        gateway.api_url + "/chat/completions",
        json=body("test/dies", stream=True),
        headers=auth(key),
        timeout=30,
    )
    assert response.status_code == 200
    frames = [line[6:] for line in response.text.splitlines() if line.startswith("data: {")]
    assert "error" in json.loads(frames[-1])
    row = generation(gateway, key, response.headers["x-generation-id"])
    assert row["status"] == 502 and row["cancelled"] is False
    assert row["tokens_completion"] == DIES_AFTER
    assert Decimal(str(row["total_cost"])) == priced(PROMPT_ESTIMATE, DIES_AFTER) > 0


def test_an_upstream_that_reports_no_usage_is_billed_for_what_was_relayed(
    gateway: RunningGateway,
) -> None:
    key = new_key(gateway, label="nousage")
    client = openai.OpenAI(base_url=gateway.api_url, api_key=key, max_retries=0)
    chunks = list(
        client.chat.completions.create(
            model="test/nousage",
            messages=MESSAGES,  # type: ignore[arg-type]
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    usage = chunks[-1].usage
    assert usage is not None and usage.model_extra is not None
    assert usage.completion_tokens == DIES_AFTER
    cost = priced(PROMPT_ESTIMATE, DIES_AFTER)
    assert Decimal(str(usage.model_extra["cost"])) == cost
    row = generation(gateway, key, chunks[-1].id)
    assert row["tokens_completion"] == DIES_AFTER and row["status"] == 200


async def _burst(targets: list[RunningGateway], key: str, count: int) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=60) as client:
        return await asyncio.gather(
            *(
                client.post(
                    targets[i % len(targets)].api_url + "/chat/completions",
                    json=body("test/slow", max_tokens=50),
                    headers=auth(key),
                )
                for i in range(count)
            )
        )


def _spend_within_the_limit(targets: list[RunningGateway], limit: float) -> None:
    key = new_key(targets[0], label="burst", limit=limit)
    responses = asyncio.run(_burst(targets, key, 12))
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 402}, [r.text for r in responses]
    served = [r for r in responses if r.status_code == 200]
    assert served and len(served) < 12, statuses
    spent = sum(Decimal(str(r.json()["usage"]["cost"])) for r in served)
    assert spent == len(served) * FULL_COST <= Decimal(str(limit))
    refused = next(r for r in responses if r.status_code == 402)
    assert (
        "You requested up to 50 tokens, but can only afford" in refused.json()["error"]["message"]
    )
    for target in targets:  # every replica reports the spend its limit goes by
        assert key_info(target, key)["usage"] == pytest.approx(float(spent))


def test_concurrent_requests_cannot_overspend_a_limit(gateway: RunningGateway) -> None:
    _spend_within_the_limit([gateway], 0.05)


def test_a_request_whose_max_tokens_the_key_cannot_afford_is_402(
    gateway: RunningGateway,
) -> None:
    key = new_key(gateway, label="afford", limit=0.01)
    refused = httpx.post(
        gateway.api_url + "/chat/completions",
        json=body("test/slow", max_tokens=4000),
        headers=auth(key),
        timeout=30,
    )
    assert refused.status_code == 402
    error = refused.json()["error"]
    found = re.search(
        r"You requested up to 4000 tokens, but can only afford (\d+)", error["message"]
    )
    assert found is not None, error["message"]
    affordable = int(found.group(1))
    assert 0 < affordable < 4000 and error["metadata"]["affordable_tokens"] == affordable
    assert error["param"] == "max_tokens"
    # The count is the boundary: one token more is refused, exactly that many is served.
    more = httpx.post(
        gateway.api_url + "/chat/completions",
        json=body("test/slow", max_tokens=affordable + 1),
        headers=auth(key),
        timeout=30,
    )
    assert more.status_code == 402
    served = httpx.post(
        gateway.api_url + "/chat/completions",
        json=body("test/slow", max_tokens=affordable),
        headers=auth(key),
        timeout=30,
    )
    assert served.status_code == 200, served.text


@pytest.mark.parametrize("limit", [None, 1.0], ids=["no-limit", "monthly-limit"])
def test_key_shows_spend_the_ledger_has_not_written_yet(
    gateway: RunningGateway, limit: float | None
) -> None:
    fields: dict[str, object] = {"label": "unwritten"}
    if limit is not None:
        fields |= {"limit": limit, "limit_reset": "monthly"}
    key = new_key(gateway, **fields)
    answer = httpx.post(
        gateway.api_url + "/chat/completions",
        json=body("test/slow", max_tokens=50),
        headers=auth(key),
        timeout=30,
    )
    assert answer.status_code == 200
    cost = float(answer.json()["usage"]["cost"])
    info = key_info(gateway, key)  # at once: the row waits 30 s in the writer's queue
    assert info["usage"] == info["usage_daily"] == info["usage_monthly"] == pytest.approx(cost)
    if limit is not None:
        assert info["limit_remaining"] == pytest.approx(limit - cost)


@pytest.fixture(scope="module")
def replicas(
    tmp_path_factory: pytest.TempPathFactory, upstream: SlowOpenAI
) -> Iterator[list[RunningGateway]]:
    """Two gateway processes sharing one PostgreSQL database and one Redis database."""
    data = tmp_path_factory.mktemp("billing-replicas")
    with fresh_database() as url:
        env = {"MODELYARD_DATABASE_URL": url, "MODELYARD_REDIS_URL": "redis://127.0.0.1:6379/5"}
        first = start(data, upstream, env)
        second = start(data, upstream, env)
        make_app(first, "billing")
        yield [first, second]
        first.stop()
        second.stop()


def test_two_replicas_cannot_overspend_a_limit(replicas: list[RunningGateway]) -> None:
    _spend_within_the_limit(replicas, 0.05)
