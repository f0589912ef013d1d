"""The /api/v1 bodies in OpenRouter's shapes: what is left out, what may be null, what is
derived from the catalog and the ledger (tests/e2e/test_openrouter_sdk.py checks them
with OpenRouter's own SDK)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from modelyard.api.account import data_region, generation_body, rate_limit_body
from modelyard.api.models import _architecture, endpoint_body, model_body
from modelyard.catalog.catalog import build_catalog
from modelyard.catalog.spec import EndpointSpec, ModelSpec, Price, ProviderSpec
from modelyard.providers.base import Completion, Delta, Usage
from modelyard.schema.response import ChunkWriter, completion_body
from modelyard.stats import EndpointStats, Percentiles, Stats
from modelyard.store import Attempt, Generation, Store, database_url
from tests.pg import fresh_database

on_session_loop = pytest.mark.asyncio(loop_scope="session")

LOCAL = ProviderSpec(id="local", kind="local", region="local")
UPSTREAM = ProviderSpec(id="up", kind="openai", name="Up Inc", region="eu")
CATALOG = build_catalog(
    [LOCAL, UPSTREAM],
    [
        ModelSpec(
            id="acme/tiny",
            name="Acme: Tiny",
            tokenizer="Llama3",
            endpoints=[
                EndpointSpec(provider="local", upstream_model="builtin:x"),
                EndpointSpec(
                    provider="up",
                    upstream_model="tiny",
                    price=Price(prompt=1, completion=2),
                    supported_parameters=["max_tokens", "temperature"],
                ),
            ],
        ),
        ModelSpec(
            id="acme/plain",
            name="Acme: Plain",
            endpoints=[EndpointSpec(provider="up", upstream_model="plain")],
        ),
    ],
)
TINY, PLAIN = CATALOG.models["acme/tiny"], CATALOG.models["acme/plain"]


def _frames(raw: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(line[6:]) for line in raw.split(b"\n\n") if line.startswith(b"data: {")]


def test_chunks_leave_out_system_fingerprint_but_the_completion_has_it_null() -> None:
    writer = ChunkWriter("gen-1", 5, "acme/tiny", "local")
    frames = _frames(
        writer.delta(Delta(content="hi"))
        + writer.finish("stop", "stop")
        + writer.usage(Usage(prompt_tokens=2, completion_tokens=1), Decimal(0))
    )
    assert len(frames) == 3
    assert all("system_fingerprint" not in f for f in frames)
    usage = Usage(prompt_tokens=2, completion_tokens=1)
    done = Completion(content="hi", finish_reason="stop", native_finish_reason="stop", usage=usage)
    body = orjson.loads(completion_body("gen-1", 5, "acme/tiny", "local", done, Decimal(0)))
    assert "system_fingerprint" in body and body["system_fingerprint"] is None


def test_model_body_has_links_and_null_defaults_and_a_tokenizer_only_when_known() -> None:
    tiny = model_body(TINY)
    assert tiny["links"] == {"details": "/api/v1/models/acme/tiny/endpoints"}
    assert tiny["default_parameters"] is None and tiny["supported_voices"] is None
    assert tiny["architecture"]["tokenizer"] == "Llama3"
    # The models list may leave the tokenizer out, the endpoints list needs it (or null).
    assert "tokenizer" not in model_body(PLAIN)["architecture"]
    assert _architecture(PLAIN, tokenizer_required=True)["tokenizer"] is None


def test_endpoint_body_names_its_model_and_says_what_it_supports() -> None:
    local, upstream = TINY.endpoints
    body = endpoint_body(local)
    assert body["model_id"] == "acme/tiny" and body["model_name"] == "Acme: Tiny"
    assert body["supports_tool_choice"] == dict.fromkeys(
        ("auto", "none", "required", "function"), True
    )
    assert body["supports_implicit_caching"] is True  # the embedded model's prompt states
    assert body["uptime_last_5m"] is None and body["latency_last_30m"] is None

    other = endpoint_body(upstream)
    assert other["supports_tool_choice"] == dict.fromkeys(
        ("auto", "none", "required", "function"), False
    )
    assert other["supports_implicit_caching"] is False
    assert other["provider_name"] == "Up Inc" and other["tag"] == "up"


def test_endpoint_uptime_is_in_percent() -> None:
    spread = Percentiles(10.0, 20.0, 30.0, 40.0)
    stats = EndpointStats({"5m": 1.0, "30m": 0.75, "1d": None}, [], spread, None)
    body = endpoint_body(TINY.endpoints[0], stats)
    assert (body["uptime_last_5m"], body["uptime_last_30m"], body["uptime_last_1d"]) == (
        100.0,
        75.0,
        None,
    )
    assert body["latency_last_30m"] == {"p50": 10.0, "p75": 20.0, "p90": 30.0, "p99": 40.0}
    assert body["throughput_last_30m"] is None


def test_generation_body_in_openrouters_types() -> None:
    row = Generation(
        id="gen-1",
        created_at=datetime(2024, 3, 1, tzinfo=UTC),
        app_id="app_1",
        key_id="key_1",
        model="acme/tiny",
        provider="up",
        endpoint="up/acme/tiny",
        status=200,
        cost=Decimal("0.25"),
        attempts=[Attempt("local", 503, "busy", 12.5), Attempt("up", 200, None, 80.0)],
    )
    body = generation_body(row, "shop", UPSTREAM)
    assert body["app_id"] is None and body["app"] == "shop"  # OpenRouter's app_id is a number
    assert body["api_type"] == "completions" and body["data_region"] == "europe"
    assert body["total_cost"] == body["usage"] == 0.25
    assert body["origin"] == "" and body["upstream_id"] is None
    assert body["provider_responses"] == [
        {"provider_name": "local", "status": 503, "latency": 12.5},
        {"provider_name": "up", "status": 200, "latency": 80.0},
    ]


def test_data_region_maps_onto_openrouters_three() -> None:
    assert data_region(ProviderSpec(id="a", kind="openai", region="us")) == "us"
    assert data_region(ProviderSpec(id="a", kind="openai", region="EU")) == "europe"
    assert data_region(LOCAL) == "global"
    assert data_region(ProviderSpec(id="a", kind="openai")) == "global"
    assert data_region(None) == "global"


def test_rate_limit_says_minus_one_without_a_request_limit() -> None:
    assert rate_limit_body(None, None)["requests"] == -1
    limited = rate_limit_body(30, 1000)
    assert (limited["requests"], limited["interval"], limited["rpm"], limited["tpm"]) == (
        30,
        "1m",
        30,
        1000,
    )
    assert isinstance(limited["note"], str) and "1000" in limited["note"]


# -- BYOK spend per period, from the ledger --------------------------------------------------

NOW = datetime(2024, 3, 13, 12, 0, tzinfo=UTC)  # a Wednesday
_ids = itertools.count()


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        opened = await Store.open(database_url(tmp_path, None))
        yield opened
        await opened.close()
        return
    with fresh_database() as url:
        opened = await Store.open(url)
        yield opened
        await opened.close()


def _row(ago: timedelta, cost: str, *, byok: bool, key: str = "key_1") -> Generation:
    return Generation(
        id=f"gen-{next(_ids)}",
        created_at=NOW - ago,
        app_id="app_1",
        key_id=key,
        model="acme/tiny",
        provider="up",
        endpoint="up/acme/tiny",
        status=200,
        cost=Decimal(cost),
        is_byok=byok,
    )


@on_session_loop
async def test_byok_spend_per_period_counts_only_byok_rows_of_the_key(store: Store) -> None:
    await store.insert_generations(
        [
            _row(timedelta(hours=1), "1.5", byok=True),  # today
            _row(timedelta(hours=1), "100", byok=False),  # not BYOK
            _row(timedelta(hours=1), "100", byok=True, key="key_2"),  # another key
            _row(timedelta(days=2), "0.25", byok=True),  # Monday: this week
            _row(timedelta(days=10), "0.125", byok=True),  # this month, an earlier week
            _row(timedelta(days=40), "2", byok=True),  # an earlier month
        ]
    )
    day = NOW.replace(hour=0)
    periods = {
        "total": None,
        "daily": day,
        "weekly": day - timedelta(days=2),
        "monthly": day.replace(day=1),
    }
    spend = await Stats(store._engine).key_byok_spend("key_1", periods)
    assert spend == {
        "total": Decimal("3.875"),
        "daily": Decimal("1.5"),
        "weekly": Decimal("1.75"),
        "monthly": Decimal("1.875"),
    }
    nothing = await Stats(store._engine).key_byok_spend("key_3", periods)
    assert nothing == dict.fromkeys(periods, Decimal(0))
