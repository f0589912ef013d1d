"""Sticky routing keeps a conversation on the endpoint holding its prompt cache."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from modelyard.catalog import load_catalog
from modelyard.providers.registry import ProviderRegistry
from modelyard.routing.planner import Planner
from modelyard.routing.sticky import StickySessions, conversation_key
from modelyard.schema.chat import ChatRequest, parse_chat_request
from tests.unit.test_routing import Clock, NullProvider

CATALOG = """
[[providers]]
id = "a"
kind = "openai"
[[providers]]
id = "b"
kind = "openai"
[[providers]]
id = "nocache"
kind = "openai"

[[models]]
id = "t/cached"
name = "Cached"
[[models.endpoints]]
provider = "a"
upstream_model = "m"
price = { prompt = 1.0, completion = 1.0, cache_read = 0.1 }
[[models.endpoints]]
provider = "b"
upstream_model = "m"
price = { prompt = 1.0, completion = 1.0, cache_read = 0.1 }
[[models.endpoints]]
provider = "nocache"
upstream_model = "m"
price = { prompt = 1.0, completion = 1.0 }
"""


def request(user: str = "hi", **fields: Any) -> ChatRequest:
    body = {
        "model": "t/cached",
        "messages": [
            {"role": "system", "content": "long rules"},
            {"role": "user", "content": user},
        ],
        **fields,
    }
    return parse_chat_request(json.dumps(body).encode())


@pytest.fixture
def planner(tmp_path: Path) -> tuple[Planner, Clock]:
    path = tmp_path / "c.toml"
    path.write_text(CATALOG)
    registry = ProviderRegistry()
    registry._providers["openai"] = NullProvider()
    clock = Clock()
    planner = Planner(load_catalog(path), registry, rng=random.Random(3))
    planner.sticky = StickySessions(clock=clock)
    return planner, clock


def first(planner: Planner, session: str, **fields: Any) -> str:
    return planner.plan(request(**fields), session=lambda: session)[0].endpoint.provider.id


def test_a_served_conversation_sticks_to_its_endpoint_until_idle(
    planner: tuple[Planner, Clock],
) -> None:
    plan, clock = planner
    routes = plan.plan(request(), session=lambda: "s1")
    served = next(r for r in routes if r.endpoint.provider.id == "b")
    plan.served(lambda: "s1", served)
    assert {first(plan, "s1") for _ in range(50)} == {"b"}
    # Other conversations keep the weighted random spread.
    assert len({first(plan, f"other-{i}") for i in range(50)}) > 1
    assert first(plan, "s1", provider={"sort": "price"}) in {"a", "b", "nocache"}
    clock.now += 601
    assert len({first(plan, "s1") for _ in range(50)}) > 1


def test_endpoints_without_cheap_cache_reads_do_not_stick(planner: tuple[Planner, Clock]) -> None:
    plan, _ = planner
    routes = plan.plan(request(), session=lambda: "s2")
    plan.served(lambda: "s2", next(r for r in routes if r.endpoint.provider.id == "nocache"))
    assert plan.sticky.endpoint_for("s2|t/cached") is None


def test_the_conversation_is_hashed_only_where_an_endpoint_caches_prompts(
    planner: tuple[Planner, Clock],
) -> None:
    plan, _ = planner
    asked: list[str] = []

    def session() -> str:
        asked.append("asked")
        return "s3"

    routes = plan.plan(request(), session=session)
    assert asked, "t/cached has endpoints with cheap cache reads: its routing asks"
    asked.clear()
    nocache = next(r for r in routes if r.endpoint.provider.id == "nocache")
    plan.served(session, nocache)
    plan.plan(request(provider={"only": ["nocache"]}), session=session)
    assert asked == []


def test_conversation_key_follows_the_first_messages_or_the_session_id() -> None:
    assert conversation_key(request("hi"), None) == conversation_key(request("hi"), None)
    assert conversation_key(request("hi"), None) != conversation_key(request("bye"), None)
    assert conversation_key(request("hi", session_id="abc"), None) == "id:abc"
    assert conversation_key(request("hi"), "xyz") == "id:xyz"
