"""Every request leaves one ledger row with its cost; rows survive SIGTERM; both databases."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import openai
import pytest

from modelyard.store import Generation, Store
from modelyard.store.store import database_url
from tests.e2e.server import RunningGateway, start_gateway
from tests.pg import fresh_database

MODEL = "huggingface/smollm2-135m-instruct"
HI = [{"role": "user", "content": "Say hi"}]
# The embedded model with a price, so costs are not all zero.
PRICED = """
[[models]]
id = "huggingface/smollm2-135m-instruct"
name = "SmolLM2 135M Instruct (priced for tests)"
aliases = ["smollm2"]
context_length = 8192
max_output = 4096

[[models.endpoints]]
provider = "local"
upstream_model = "builtin:smollm2-135m-instruct"
price = { prompt = 1.5, completion = 4.0 }
"""


@pytest.fixture(scope="module")
def priced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    data = tmp_path_factory.mktemp("priced")
    catalog = data / "catalog.toml"
    catalog.write_text(PRICED)
    running = start_gateway(
        data, extra_args=["--catalog", str(catalog)], env={"MODELYARD_LOG_CONTENT": "1"}
    )
    yield running
    running.stop()


def admin(gw: RunningGateway, method: str, path: str, **kwargs: object) -> httpx.Response:
    return httpx.request(
        method, gw.base_url + path, headers={"Authorization": f"Bearer {gw.admin_key}"}, **kwargs
    )  # type: ignore[arg-type]


def new_key(gw: RunningGateway, **fields: object) -> str:
    response = admin(gw, "POST", "/admin/apps/default/keys", json=fields)
    assert response.status_code == 201, response.text
    return str(response.json()["key"])


def generation(gw: RunningGateway, gen_id: str, key: str) -> httpx.Response:
    return httpx.get(
        gw.api_url + "/generation",
        params={"id": gen_id},
        headers={"Authorization": f"Bearer {key}"},
    )


def test_cost_in_usage_and_ledger_row_match_the_catalog_price(priced: RunningGateway) -> None:
    client = openai.OpenAI(base_url=priced.api_url, api_key=priced.app_key, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL,
        messages=HI,
        max_tokens=5,
        seed=1,  # type: ignore[arg-type]
        temperature=0.7,
        top_p=0.9,
        extra_headers={"HTTP-Referer": "https://shop.example", "X-Title": "Shop"},
    )
    completion = raw.parse()
    usage = completion.usage
    assert usage is not None and usage.model_extra is not None
    expected = (
        Decimal(usage.prompt_tokens) * Decimal("1.5") + Decimal(usage.completion_tokens) * 4
    ) / 1_000_000
    assert Decimal(str(usage.model_extra["cost"])) == expected

    row = generation(priced, completion.id, priced.app_key)
    assert row.status_code == 200
    data = row.json()["data"]
    assert data["id"] == completion.id
    assert data["model"] == MODEL and data["provider_name"] == "local"
    assert data["tokens_prompt"] == usage.prompt_tokens
    assert data["tokens_completion"] == usage.completion_tokens
    assert Decimal(str(data["total_cost"])) == expected
    assert data["latency"] > 0 and data["generation_time"] >= 0
    assert data["streamed"] is False and data["cancelled"] is False
    assert data["finish_reason"] == completion.choices[0].finish_reason
    assert data["app"] == "default"
    assert data["http_referer"] == "https://shop.example" and data["x_title"] == "Shop"

    assert generation(priced, completion.id, priced.admin_key).status_code == 200
    other = new_key(priced)
    assert generation(priced, completion.id, other).status_code == 404
    assert generation(priced, "gen-nope", priced.app_key).status_code == 404
    missing = httpx.get(
        priced.api_url + "/generation", headers={"Authorization": f"Bearer {priced.app_key}"}
    )
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "id"


def test_streamed_request_is_recorded_as_streamed(priced: RunningGateway) -> None:
    client = openai.OpenAI(base_url=priced.api_url, api_key=priced.app_key, max_retries=0)
    chunks = list(
        client.chat.completions.create(
            model=MODEL,
            messages=HI,
            max_tokens=4,
            stream=True,  # type: ignore[arg-type]
        )
    )
    final = chunks[-1]
    assert final.usage is not None and final.usage.model_extra is not None
    assert final.usage.model_extra["cost"] > 0
    data = generation(priced, final.id, priced.app_key).json()["data"]
    assert data["streamed"] is True
    assert data["tokens_completion"] == final.usage.completion_tokens


def test_key_endpoint_reports_limit_and_usage(priced: RunningGateway) -> None:
    key = new_key(priced, label="limited", limit=2.5, limit_reset="monthly", rpm=30)
    client = openai.OpenAI(base_url=priced.api_url, api_key=key, max_retries=0)
    costs = []
    for _ in range(2):
        reply = client.chat.completions.create(model=MODEL, messages=HI, max_tokens=3)  # type: ignore[arg-type]
        costs.append(Decimal(str(reply.usage.model_extra["cost"])))  # type: ignore[union-attr,index]
    spent = float(sum(costs))
    body: dict[str, object] = {}
    for _ in range(100):  # until the batch writer has flushed both rows
        body = httpx.get(
            priced.api_url + "/key", headers={"Authorization": f"Bearer {key}"}
        ).json()["data"]
        if body["usage"] == pytest.approx(spent):
            break
        time.sleep(0.05)
    assert body["label"] == "limited"
    assert body["limit"] == 2.5 and body["limit_reset"] == "monthly"
    assert body["usage"] == pytest.approx(spent)
    assert body["usage_daily"] == pytest.approx(spent)
    assert body["limit_remaining"] == pytest.approx(2.5 - spent)
    assert body["rate_limit"]["rpm"] == 30


async def _stored(url: str, gen_id: str) -> Generation:
    store = await Store.open(url)
    try:
        for _ in range(100):
            row = await store.get_generation(gen_id)
            if row is not None:
                return row
            await asyncio.sleep(0.05)
        raise AssertionError("row never written")
    finally:
        await store.close()


async def _read_row(url: str, gen_id: str) -> tuple[str | None, str | None]:
    row = await _stored(url, gen_id)
    return row.prompt_text, row.output_text


def test_rows_say_which_api_and_usage_and_the_cli_show_it(priced: RunningGateway) -> None:
    client = openai.OpenAI(base_url=priced.api_url, api_key=priced.app_key, max_retries=0)
    reply = client.chat.completions.create(model=MODEL, messages=HI, max_tokens=2)  # type: ignore[arg-type]
    assert asyncio.run(_stored(database_url(priced.data_dir, None), reply.id)).api == (
        "chat.completions"
    )
    usage = admin(priced, "GET", "/admin/apps/default/usage").json()["data"]
    assert usage and {row["api"] for row in usage} == {"chat.completions"}

    env = {**os.environ, "MODELYARD_URL": priced.base_url, "MODELYARD_ADMIN_KEY": priced.admin_key}
    shown = subprocess.run(
        [sys.executable, "-m", "modelyard", "usage", "-a", "default"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    header = next(line for line in shown.stdout.splitlines() if "┃" in line)
    assert [cell.strip() for cell in header.split("┃")][1:4] == ["day", "model", "api"]
    rows = [[cell.strip() for cell in line.split("│")] for line in shown.stdout.splitlines()]
    assert any(row[2:4] == [MODEL, "chat.completions"] for row in rows if len(row) > 4)


def test_content_is_logged_when_enabled_but_never_for_zdr_keys(priced: RunningGateway) -> None:
    url = database_url(priced.data_dir, None)
    plain = openai.OpenAI(base_url=priced.api_url, api_key=priced.app_key, max_retries=0)
    logged = plain.chat.completions.create(model=MODEL, messages=HI, max_tokens=3)  # type: ignore[arg-type]
    prompt, output = asyncio.run(_read_row(url, logged.id))
    assert prompt is not None and "Say hi" in prompt
    assert output == logged.choices[0].message.content

    zdr = openai.OpenAI(base_url=priced.api_url, api_key=new_key(priced, zdr=True), max_retries=0)
    private = zdr.chat.completions.create(model=MODEL, messages=HI, max_tokens=3)  # type: ignore[arg-type]
    assert asyncio.run(_read_row(url, private.id)) == (None, None)


def test_no_content_is_stored_by_default(gateway: RunningGateway, client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model=MODEL, messages=HI, max_tokens=2)  # type: ignore[arg-type]
    assert asyncio.run(_read_row(database_url(gateway.data_dir, None), reply.id)) == (None, None)


async def _count(url: str) -> int:
    store = await Store.open(url)
    try:
        return await store.count_generations()
    finally:
        await store.close()


def _flush_on_sigterm(data: Path, env: dict[str, str], url: str) -> None:
    # A 30 s batch delay keeps every row queued until SIGTERM: only the shutdown flush
    # can write them.
    running = start_gateway(data, env={**env, "MODELYARD_LEDGER_BATCH_DELAY_S": "30"})
    client = openai.AsyncOpenAI(base_url=running.api_url, api_key=running.app_key, max_retries=0)

    async def burst() -> int:
        replies = await asyncio.gather(
            *(
                client.chat.completions.create(model=MODEL, messages=HI, max_tokens=1)  # type: ignore[arg-type]
                for _ in range(40)
            )
        )
        return len(replies)

    sent = asyncio.run(burst())
    # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status tells why.
    assert running.stop(signal.SIGTERM) in (0, -signal.SIGTERM), running.log()
    assert "Application shutdown complete" in running.log()
    assert asyncio.run(_count(url)) == sent == 40


def test_sigterm_flushes_every_row_sqlite(tmp_path: Path) -> None:
    _flush_on_sigterm(tmp_path, {}, database_url(tmp_path, None))


def test_sigterm_flushes_every_row_postgresql(tmp_path: Path) -> None:
    with fresh_database() as url:
        _flush_on_sigterm(tmp_path, {"MODELYARD_DATABASE_URL": url}, url)
