"""Routing: filters with reasons, order/sort/weighted order, model fallbacks, circuit breaker."""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from modelyard.catalog import Catalog, Endpoint, load_catalog
from modelyard.errors import Forbidden, InvalidRequest, NoProviderAvailable
from modelyard.providers.base import Completion, StreamEvent
from modelyard.providers.registry import ProviderRegistry
from modelyard.routing.filters import exclusion_reason
from modelyard.routing.health import HealthTracker
from modelyard.routing.planner import Planner
from modelyard.schema.chat import ChatRequest, parse_chat_request

CATALOG = """
[[providers]]
id = "cheap"
kind = "openai"
zdr = true
[[providers]]
id = "mid"
kind = "openai"
data_collection = "allow"
[[providers]]
id = "dear"
kind = "openai"
zdr = true
[[providers]]
id = "keyed"
kind = "openai"
api_key_env = "MODELYARD_TEST_UNSET_KEY"

[[models]]
id = "t/model"
name = "T"
context_length = 1000
max_output = 500
[[models.endpoints]]
provider = "cheap"
upstream_model = "m"
quantization = "int4"
price = { prompt = 0.5, completion = 0.5 }
supported_parameters = ["max_tokens", "temperature"]
[[models.endpoints]]
provider = "mid"
upstream_model = "m"
quantization = "fp8"
price = { prompt = 1.0, completion = 1.0 }
[[models.endpoints]]
provider = "dear"
upstream_model = "m"
quantization = "bf16"
context_length = 400
max_output = 100
price = { prompt = 2.0, completion = 2.0 }
[[models.endpoints]]
provider = "keyed"
upstream_model = "m"
price = { prompt = 0.1, completion = 0.1 }

[[models]]
id = "t/backup"
name = "Backup"
[[models.endpoints]]
provider = "cheap"
upstream_model = "b"
"""


class NullProvider:
    """Routing never calls a provider; it only asks whether one exists and is ready."""

    kind: ClassVar[str] = "openai"

    def unavailable_reason(self, endpoint: Endpoint) -> str | None:
        return None

    async def complete(self, request: ChatRequest, endpoint: Endpoint) -> Completion:
        raise AssertionError("not called in routing tests")

    def stream(self, request: ChatRequest, endpoint: Endpoint) -> AsyncGenerator[StreamEvent, None]:
        raise AssertionError("not called in routing tests")

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    path = tmp_path / "routing.toml"
    path.write_text(CATALOG)
    return load_catalog(path)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def planner(catalog: Catalog, clock: Clock) -> Planner:
    registry = ProviderRegistry()
    registry._providers["openai"] = NullProvider()  # a started provider of kind openai
    health = HealthTracker(failure_threshold=3, open_s=30, clock=clock)
    return Planner(catalog, registry, health, random.Random(7))


def request(**fields: Any) -> ChatRequest:
    body = {"model": "t/model", "messages": [{"role": "user", "content": "hi"}], **fields}
    return parse_chat_request(json.dumps(body).encode())


def providers(planner: Planner, **fields: Any) -> list[str]:
    return [route.endpoint.provider.id for route in planner.plan(request(**fields))]


def excluded(planner: Planner, **fields: Any) -> dict[str, str]:
    with pytest.raises(NoProviderAvailable) as caught:
        planner.plan(request(**fields))
    return {k.split(" via ")[1]: v for k, v in caught.value.metadata["excluded"].items()}


def test_default_order_weights_endpoints_by_inverse_square_price(planner: Planner) -> None:
    # Eligible: cheap (total $1/M), mid ($2/M), dear ($4/M) -> weights 1, 1/4, 1/16.
    firsts = Counter(providers(planner)[0] for _ in range(2000))
    total = 1 + 1 / 4 + 1 / 16
    for name, share in (("cheap", 1 / total), ("mid", 0.25 / total), ("dear", 0.0625 / total)):
        assert abs(firsts[name] / 2000 - share) < 0.03, (name, firsts)


def test_missing_api_key_excludes_the_endpoint_and_names_the_variable(planner: Planner) -> None:
    assert "keyed" not in providers(planner)
    reasons = excluded(planner, provider={"only": ["keyed"]})
    assert reasons["keyed"] == "no API key: set MODELYARD_TEST_UNSET_KEY"


def test_order_then_the_rest_and_no_fallbacks(planner: Planner) -> None:
    assert providers(planner, provider={"order": ["dear", "mid"]})[:2] == ["dear", "mid"]
    assert providers(planner, provider={"order": ["dear", "mid"], "allow_fallbacks": False}) == [
        "dear",
        "mid",
    ]


def test_sort_by_price_latency_and_throughput(planner: Planner) -> None:
    assert providers(planner, provider={"sort": "price"}) == ["cheap", "mid", "dear"]
    health = planner.health
    health.observe("dear/t/model", latency_ms=50, tokens_per_s=300)
    health.observe("mid/t/model", latency_ms=200, tokens_per_s=80)
    assert providers(planner, provider={"sort": "latency"}) == ["dear", "mid", "cheap"]
    assert providers(planner, provider={"sort": "throughput"}) == ["dear", "mid", "cheap"]


@pytest.mark.parametrize(
    ("fields", "kept", "reason_of_excluded"),
    [
        ({"provider": {"only": ["mid"]}}, ["mid"], "not in provider.only"),
        ({"provider": {"ignore": ["cheap", "dear"]}}, ["mid"], "in provider.ignore"),
        ({"provider": {"zdr": True}}, ["cheap", "dear"], "zero-data-retention"),
        ({"provider": {"data_collection": "deny"}}, ["cheap", "dear"], "may retain data"),
        ({"provider": {"quantizations": ["fp8"]}}, ["mid"], "quantization"),
        ({"provider": {"max_price": {"prompt": 1.0}}}, ["cheap", "mid"], "max_price.prompt"),
        (
            {"provider": {"require_parameters": True}, "top_p": 0.5},
            ["mid", "dear"],
            "does not support top_p",
        ),
        (
            {"tools": [{"type": "function", "function": {"name": "f"}}]},
            ["mid", "dear"],
            "does not support tools",
        ),
        (
            {"response_format": {"type": "json_object"}},
            ["mid", "dear"],
            "does not support response_format",
        ),
        ({"max_tokens": 200}, ["cheap", "mid"], "above its max output 100"),
        (
            {"messages": [{"role": "user", "content": "x" * 8 * 450}]},
            ["cheap", "mid"],
            "exceeds its context length 400",
        ),
    ],
)
def test_each_filter_keeps_the_right_endpoints_and_says_why(
    planner: Planner,
    catalog: Catalog,
    fields: dict[str, Any],
    kept: list[str],
    reason_of_excluded: str,
) -> None:
    assert sorted(
        providers(
            planner,
            provider={"sort": "price"} | fields.get("provider", {}),
            **{k: v for k, v in fields.items() if k != "provider"},
        )
    ) == sorted(kept)
    model = catalog.find("t/model")
    assert model is not None
    req = request(**fields)
    for endpoint in model.endpoints:
        if endpoint.provider.id in ("cheap", "mid", "dear") and endpoint.provider.id not in kept:
            reason = exclusion_reason(endpoint, req, zdr_key=False)
            assert reason is not None and reason_of_excluded in reason, reason


def test_nothing_left_is_503_listing_every_endpoint(planner: Planner) -> None:
    reasons = excluded(planner, provider={"only": ["nobody"]})
    assert set(reasons) == {"cheap", "mid", "dear", "keyed"}


def test_prompt_too_long_for_every_endpoint_is_a_400(planner: Planner) -> None:
    with pytest.raises(InvalidRequest) as caught:
        planner.plan(request(messages=[{"role": "user", "content": "x" * 8 * 1200}]))
    assert caught.value.param == "messages"


def test_models_fallbacks_follow_and_respect_the_key_scope(planner: Planner) -> None:
    routes = planner.plan(request(models=["t/backup"], provider={"sort": "price"}))
    assert [r.model.id for r in routes] == ["t/model"] * 3 + ["t/backup"]
    scoped = planner.plan(request(models=["t/backup"]), frozenset({"t/model"}))
    assert {r.model.id for r in scoped} == {"t/model"}
    with pytest.raises(Forbidden):
        planner.plan(request(), frozenset({"t/backup"}))


def test_zdr_key_only_reaches_zdr_providers(planner: Planner) -> None:
    routes = planner.plan(request(), zdr_key=True)
    assert {r.endpoint.provider.id for r in routes} == {"cheap", "dear"}


def test_circuit_opens_skips_then_probes_once_and_closes(planner: Planner, clock: Clock) -> None:
    health = planner.health
    for _ in range(3):
        health.failure("mid/t/model")
    assert "circuit open" in excluded(planner, provider={"only": ["mid"]})["mid"]
    clock.now += 31  # half-open: exactly one probe is let through
    assert providers(planner, provider={"only": ["mid"]}) == ["mid"]
    assert "half-open" in excluded(planner, provider={"only": ["mid"]})["mid"]
    health.success("mid/t/model")
    assert providers(planner, provider={"only": ["mid"]}) == ["mid"]
    # A failed probe opens the circuit again at once.
    for _ in range(3):
        health.failure("mid/t/model")
    clock.now += 31
    providers(planner, provider={"only": ["mid"]})
    health.failure("mid/t/model")
    assert "circuit open" in excluded(planner, provider={"only": ["mid"]})["mid"]


def test_rate_limits_are_not_failures(planner: Planner) -> None:
    for _ in range(10):
        planner.health.release("mid/t/model")
    assert "mid" in providers(planner)
