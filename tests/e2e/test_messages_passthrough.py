"""/v1/messages to a provider of kind `anthropic`: the request and the stream pass through.

A real `modelyard serve` process routes `test/claude` to `FakeAnthropic` (tests/fakes),
which records every request as it arrived and every event it streamed; the client is the
official anthropic SDK. Each test compares what the client sent with what the fake
received, and what the fake sent with what the client got.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest
from anthropic.types import ToolParam

from tests.e2e.server import RunningGateway, start_gateway
from tests.fakes.anthropic_server import API_KEY, FakeAnthropic, count_prompt

KEY_ENV = "MODELYARD_TEST_FAKE_ANTHROPIC_KEY"
MODEL = "test/claude"
UPSTREAM = "claude-test"
BETA = "interleaved-thinking-2025-05-14,context-management-2025-06-27"
# A beta feature's field: it goes upstream only with an anthropic-beta header.
CONTEXT_MANAGEMENT = {"context_management": {"edits": [{"type": "clear_tool_uses_20250919"}]}}
# What Anthropic does not define, or what only the gateway reads: none of it goes upstream.
DROPPED = {
    **CONTEXT_MANAGEMENT,
    "x_unknown_field": {"anything": [1, 2]},
    "provider": {"order": ["fake-anthropic"]},
    "models": [MODEL],
    "session_id": "conversation-1",
}
SYSTEM: list[Any] = [
    {
        "type": "text",
        "text": "You answer weather questions.",
        "cache_control": {"type": "ephemeral"},
    }
]
WEATHER: ToolParam = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city"],
    },
}
TOOLS: list[Any] = [{**WEATHER, "cache_control": {"type": "ephemeral"}}]
ASK: dict[str, Any] = {
    "role": "user",
    "content": [
        {
            "type": "text",
            "text": "What is the weather in Paris?",
            "cache_control": {"type": "ephemeral", "ttl": "5m"},
        }
    ],
}
# A tool round with extended thinking: the signed thinking block must go back unchanged.
CONVERSATION: list[Any] = [
    ASK,
    {
        "role": "assistant",
        "content": [
            {
                "type": "thinking",
                "thinking": "The user wants the weather in Paris; the tool knows it.",
                "signature": "EqQBCkYIBxgCKkDfakeSignature+/==",
            },
            {
                "type": "tool_use",
                "id": "toolu_01",
                "name": "get_weather",
                "input": {"city": "Paris"},
            },
        ],
    },
    {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "toolu_01", "content": "Sunny, 21 C"}],
    },
]
PARAMS: dict[str, Any] = {
    "model": MODEL,
    "max_tokens": 2048,
    "system": SYSTEM,
    "tools": TOOLS,
    "tool_choice": {"type": "auto"},
    "messages": CONVERSATION,
    "thinking": {"type": "enabled", "budget_tokens": 1024},
    "metadata": {"user_id": "user-1"},
    "stop_sequences": ["STOP"],
}


def _catalog(base_url: str) -> str:
    return f"""
[[providers]]
id = "fake-anthropic"
kind = "anthropic"
base_url = "{base_url}"
api_key_env = "{KEY_ENV}"

[[models]]
id = "{MODEL}"
name = "Claude (a fake Anthropic API)"
context_length = 200000
max_output = 8192
input_modalities = ["text", "image", "file"]

[[models.endpoints]]
provider = "fake-anthropic"
upstream_model = "{UPSTREAM}"
price = {{ prompt = 1.0, completion = 5.0, cache_read = 0.1, cache_write = 1.25 }}
"""


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server


@pytest.fixture(scope="module")
def gateway(
    fake: FakeAnthropic, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningGateway]:
    home = tmp_path_factory.mktemp("messages-passthrough")
    catalog = home / "catalog.toml"
    catalog.write_text(_catalog(fake.base_url))
    env = {"MODELYARD_LOAD_LOCAL": "0", KEY_ENV: API_KEY}
    running = start_gateway(home / "data", extra_args=["--catalog", str(catalog)], env=env)
    yield running
    running.stop()


def _app_key(gw: RunningGateway, app: str, *models: str) -> str:
    headers = {"Authorization": f"Bearer {gw.admin_key}"}
    created = httpx.post(f"{gw.base_url}/admin/apps", json={"name": app}, headers=headers)
    assert created.status_code == 201, created.text
    for index, model in enumerate(models):
        attached = httpx.post(
            f"{gw.base_url}/admin/apps/{app}/models",
            json={"model": model, "alias": f"MODEL_{index}"},
            headers=headers,
        )
        assert attached.status_code == 201, attached.text
    key = httpx.post(f"{gw.base_url}/admin/apps/{app}/keys", json={}, headers=headers)
    assert key.status_code == 201, key.text
    return str(key.json()["key"])


@pytest.fixture(scope="module")
def key(gateway: RunningGateway) -> str:
    return _app_key(gateway, "passthrough", MODEL)


@pytest.fixture
def client(gateway: RunningGateway, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.base_url, api_key=key, max_retries=0, timeout=30)


def _upstream_body(sent: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """What the fake must receive for `sent`: the same, but the upstream's model name."""
    return {**sent, "model": UPSTREAM, **changes}


def _no_client_key(fake: FakeAnthropic, key: str) -> None:
    received = fake.received[-1].headers
    assert received["x-api-key"] == API_KEY
    assert not [name for name, value in received.items() if key in value]


def test_the_request_reaches_the_upstream_as_sent_but_for_the_model_and_unknown_fields(
    client: anthropic.Anthropic, fake: FakeAnthropic, key: str
) -> None:
    message = client.messages.create(**PARAMS, extra_body=DROPPED)
    received = fake.received[-1]
    assert received.path == "/v1/messages"
    # cache_control on system, tools and messages and the signed thinking block: unchanged.
    assert received.body == _upstream_body(PARAMS)
    assert "anthropic-beta" not in received.headers
    _no_client_key(fake, key)

    answer = fake.answers[-1]
    assert [b["type"] for b in answer["content"]] == ["thinking", "text"]
    assert [b.to_dict(exclude_none=True) for b in message.content] == answer["content"]
    assert (message.stop_reason, message.stop_sequence) == ("end_turn", None)
    usage = fake.usages[-1]
    assert usage["cache_creation_input_tokens"] > 0
    assert message.usage.input_tokens == usage["input_tokens"]
    assert message.usage.output_tokens == usage["output_tokens"]
    assert message.usage.cache_creation_input_tokens == usage["cache_creation_input_tokens"]
    assert message.usage.cache_read_input_tokens == usage["cache_read_input_tokens"]


def _warm(client: anthropic.Anthropic, fake: FakeAnthropic) -> None:
    """One request first, so that the next with the same prefix reads the cache."""
    client.messages.create(**PARAMS)
    usage = fake.usages[-1]
    assert usage["cache_creation_input_tokens"] + usage["cache_read_input_tokens"] > 0


def test_the_stream_the_client_gets_is_the_stream_the_upstream_sent(
    client: anthropic.Anthropic, fake: FakeAnthropic
) -> None:
    _warm(client, fake)
    stream = client.messages.create(
        **PARAMS, stream=True, extra_headers={"anthropic-beta": BETA}, extra_body=DROPPED
    )
    events = [event.to_dict(exclude_none=True) for event in stream]
    # With the beta header, the beta feature's field goes too; the rest is still dropped.
    assert fake.received[-1].body == _upstream_body(PARAMS, **CONTEXT_MANAGEMENT, stream=True)
    assert fake.received[-1].headers["anthropic-beta"] == BETA
    sent = fake.streams[-1]

    def blocks(items: list[Any]) -> list[Any]:
        return [e for e in items if str(e["type"]).startswith("content_block")]

    assert blocks(events) == blocks(sent)
    delta_types = {e["delta"]["type"] for e in events if e["type"] == "content_block_delta"}
    assert {"thinking_delta", "signature_delta", "text_delta"} <= delta_types

    assert events[0]["type"] == "message_start"
    start_usage = events[0]["message"]["usage"]
    upstream_start = sent[0]["message"]["usage"]
    assert upstream_start["cache_read_input_tokens"] > 0  # the warm-up's prefix
    for name in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"):
        assert start_usage[name] == upstream_start[name], name
    (delta,) = [e for e in events if e["type"] == "message_delta"]
    (upstream_delta,) = [e for e in sent if e["type"] == "message_delta"]
    assert delta["delta"]["stop_reason"] == upstream_delta["delta"]["stop_reason"] == "end_turn"
    assert delta["usage"]["output_tokens"] == upstream_delta["usage"]["output_tokens"]
    assert events[-1] == {"type": "message_stop"}


def test_a_streamed_tool_call_accumulates_into_its_input(
    client: anthropic.Anthropic, fake: FakeAnthropic
) -> None:
    with client.messages.stream(
        model=MODEL,
        max_tokens=256,
        tools=[WEATHER],
        tool_choice={"type": "tool", "name": "get_weather"},
        messages=[{"role": "user", "content": "Weather in Paris?"}],
    ) as stream:
        pieces = [
            event.delta.partial_json
            for event in stream
            if event.type == "content_block_delta" and event.delta.type == "input_json_delta"
        ]
        final = stream.get_final_message()
    upstream = fake.answers[-1]["content"][0]
    sent_pieces = [
        e["delta"]["partial_json"]
        for e in fake.streams[-1]
        if e["type"] == "content_block_delta" and e["delta"]["type"] == "input_json_delta"
    ]
    assert pieces == sent_pieces and len([p for p in pieces if p]) > 1
    assert final.stop_reason == "tool_use"
    (block,) = final.content
    assert block.type == "tool_use"
    assert (block.id, block.name) == (upstream["id"], "get_weather")
    assert block.input == upstream["input"] == {"city": "sample", "days": 1}


def test_count_tokens_is_the_upstreams_count(
    client: anthropic.Anthropic, fake: FakeAnthropic
) -> None:
    sent: dict[str, Any] = {
        "model": MODEL,
        "system": SYSTEM,
        "tools": TOOLS,
        "messages": CONVERSATION[:1],
    }
    raw = client.messages.with_raw_response.count_tokens(**sent)
    counted = raw.parse()
    received = fake.received[-1]
    assert received.path == "/v1/messages/count_tokens"
    assert received.body == _upstream_body(sent)
    assert counted.input_tokens == count_prompt(received.body) > 0
    assert raw.headers["x-modelyard-token-count"] == "upstream"


def test_an_x_api_key_and_the_beta_api_reach_the_upstream_with_the_gateways_key(
    gateway: RunningGateway, key: str, fake: FakeAnthropic
) -> None:
    # This SDK sends its api_key as a Bearer token; x-api-key is what curl and older SDKs send.
    client = anthropic.Anthropic(
        base_url=gateway.base_url,
        api_key=None,
        default_headers={"x-api-key": key},
        max_retries=0,
        timeout=30,
    )
    message = client.beta.messages.create(
        model=MODEL,
        max_tokens=64,
        betas=["interleaved-thinking-2025-05-14"],
        messages=[{"role": "user", "content": "hello beta"}],
        extra_query={"beta": "true"},  # what older SDKs add to the beta API's URL
    )
    assert [b.to_dict(exclude_none=True) for b in message.content] == [
        {"type": "text", "text": "Echo: hello beta"}
    ]
    received = fake.received[-1]
    assert received.headers["anthropic-beta"] == "interleaved-thinking-2025-05-14"
    assert "authorization" not in received.headers
    _no_client_key(fake, key)


def test_the_api_prefix_serves_the_same_endpoint(
    gateway: RunningGateway, key: str, fake: FakeAnthropic
) -> None:
    client = anthropic.Anthropic(
        base_url=gateway.base_url + "/api", api_key=key, max_retries=0, timeout=30
    )
    message = client.messages.create(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "via api"}]
    )
    assert message.content[0].type == "text" and message.content[0].text == "Echo: via api"
    assert fake.received[-1].body["messages"] == [{"role": "user", "content": "via api"}]


def test_raw_wire_events_are_anthropic_sse(gateway: RunningGateway, key: str) -> None:
    """Each SSE frame names its event, and the data's type is that name."""
    body = {"model": MODEL, "max_tokens": 64, "stream": True, "messages": [ASK]}
    headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    with httpx.stream(
        "POST", gateway.base_url + "/v1/messages", json=body, headers=headers, timeout=30
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        frames = [f for f in response.read().decode().split("\n\n") if f.strip()]
    names = []
    for frame in frames:
        fields = dict(line.split(": ", 1) for line in frame.splitlines() if ": " in line)
        names.append(fields["event"])
        assert json.loads(fields["data"])["type"] == fields["event"]
    assert names[0] == "message_start" and names[-1] == "message_stop"
    assert "content_block_delta" in names
