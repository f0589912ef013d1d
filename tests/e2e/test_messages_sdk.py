"""/v1/messages through the official anthropic SDK, for models that are not Anthropic's.

Two backends: the embedded llama.cpp model of the default catalog (the shared `gateway`
of conftest), and a provider of kind `openai` pointing at `FakeOpenAIChat` (tests/fakes),
which records the translated chat completions request it receives.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import jsonschema
import pytest
from anthropic.types import (
    Message,
    MessageParam,
    ToolChoiceToolParam,
    ToolParam,
    ToolUseBlock,
    Usage,
)

from tests.e2e.conftest import MODEL
from tests.e2e.server import RunningGateway, start_gateway
from tests.fakes.openai_chat import FakeOpenAIChat

HELLO: list[MessageParam] = [{"role": "user", "content": "Write one sentence about the sea."}]
WEATHER: ToolParam = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city"],
    },
}
ASK_WEATHER: list[MessageParam] = [{"role": "user", "content": "What is the weather in Paris?"}]
FORCE_WEATHER: ToolChoiceToolParam = {"type": "tool", "name": "get_weather"}


def _text(message: Message) -> str:
    return "".join(b.text for b in message.content if b.type == "text")


def _prompt_tokens(usage: Usage) -> int:
    """All of the prompt: Anthropic's input_tokens leaves out what was read from the cache."""
    cached = (usage.cache_read_input_tokens or 0) + (usage.cache_creation_input_tokens or 0)
    return usage.input_tokens + cached


def _tool_use(message: Message) -> ToolUseBlock:
    (block,) = [b for b in message.content if b.type == "tool_use"]
    return block


# -- the embedded model -------------------------------------------------------------------


@pytest.fixture
def client(gateway: RunningGateway) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=gateway.base_url, api_key=gateway.app_key, max_retries=0, timeout=120
    )


def test_create_answers_an_anthropic_message(client: anthropic.Anthropic) -> None:
    message = client.messages.create(model=MODEL, max_tokens=16, messages=HELLO)
    assert message.type == "message" and message.role == "assistant"
    assert message.id and message.model == MODEL
    assert [b.type for b in message.content] == ["text"]
    assert _text(message).strip()
    assert message.stop_reason in ("end_turn", "max_tokens")
    assert _prompt_tokens(message.usage) > 5
    assert 0 < message.usage.output_tokens <= 16


def test_an_x_api_key_header_and_the_api_prefix(gateway: RunningGateway) -> None:
    # This SDK sends api_key as "Authorization: Bearer"; curl and older SDKs send x-api-key.
    client = anthropic.Anthropic(
        base_url=gateway.base_url + "/api",
        api_key=None,
        default_headers={"x-api-key": gateway.app_key},
        max_retries=0,
        timeout=120,
    )
    message = client.messages.create(model=MODEL, max_tokens=4, messages=HELLO)
    assert message.usage.output_tokens > 0 and message.model == MODEL


def test_an_auth_token_is_a_bearer_token(
    gateway: RunningGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    client = anthropic.Anthropic(
        base_url=gateway.base_url, api_key=None, auth_token=gateway.app_key, max_retries=0
    )
    message = client.messages.create(model=MODEL, max_tokens=4, messages=HELLO)
    assert message.usage.output_tokens > 0


def test_the_beta_api_with_beta_headers(client: anthropic.Anthropic) -> None:
    message = client.beta.messages.create(
        model=MODEL,
        max_tokens=4,
        betas=["token-efficient-tools-2025-02-19"],
        messages=[{"role": "user", "content": "Write one sentence about the sea."}],
        extra_headers={"anthropic-version": "2023-06-01"},  # the version older clients send
        extra_query={"beta": "true"},  # and the query they add to the beta API's URL
    )
    assert message.type == "message" and message.usage.output_tokens > 0


async def test_async_create(gateway: RunningGateway) -> None:
    client = anthropic.AsyncAnthropic(
        base_url=gateway.base_url, api_key=gateway.app_key, max_retries=0, timeout=120
    )
    message = await client.messages.create(model=MODEL, max_tokens=8, messages=HELLO)
    assert _text(message).strip() and message.usage.output_tokens > 0
    await client.close()


def test_the_stream_helper_gives_text_and_the_final_message(client: anthropic.Anthropic) -> None:
    with client.messages.stream(model=MODEL, max_tokens=16, messages=HELLO) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert len([p for p in pieces if p]) > 1
    assert "".join(pieces) == _text(final) and _text(final).strip()
    assert final.stop_reason in ("end_turn", "max_tokens")
    assert _prompt_tokens(final.usage) > 5 and 0 < final.usage.output_tokens <= 16


def test_raw_stream_events_come_in_anthropics_order(client: anthropic.Anthropic) -> None:
    stream = client.messages.create(model=MODEL, max_tokens=12, messages=HELLO, stream=True)
    events = list(stream)
    kinds = [e.type for e in events]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert kinds[-2] == "message_delta"
    assert kinds[1] == "content_block_start" and kinds[-3] == "content_block_stop"
    assert set(kinds[2:-3]) == {"content_block_delta"}
    start, delta = events[0], events[-2]
    assert delta.type == "message_delta"
    assert delta.delta.stop_reason in ("end_turn", "max_tokens")
    assert 0 < delta.usage.output_tokens <= 12
    assert start.type == "message_start"
    assert start.message.content == [] and start.message.stop_reason is None
    # Anthropic reports the prompt when the stream starts; the local prompt is known then.
    assert _prompt_tokens(start.message.usage) > 5


def test_max_tokens_cuts_with_stop_reason_max_tokens(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model=MODEL,
        max_tokens=3,
        messages=[{"role": "user", "content": "Tell me a very long story about a dragon."}],
    )
    assert message.stop_reason == "max_tokens" and message.stop_sequence is None
    assert message.usage.output_tokens == 3


def test_a_stop_sequence_stops_the_answer_before_it(client: anthropic.Anthropic) -> None:
    """A sentence about the sea has a vowel in its first 16 tokens, whatever is sampled."""
    vowels = ["a", "e", "o"]
    message = client.messages.create(
        model=MODEL, max_tokens=16, stop_sequences=vowels, messages=HELLO
    )
    assert message.stop_reason == "stop_sequence"
    assert message.stop_sequence in vowels
    assert not set(_text(message)) & set(vowels)  # cut before the first one, which is not sent
    assert message.usage.output_tokens < 16


def test_a_forced_tool_gives_a_tool_use_block(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        model=MODEL, max_tokens=60, tools=[WEATHER], tool_choice=FORCE_WEATHER, messages=ASK_WEATHER
    )
    assert message.stop_reason == "tool_use"
    block = _tool_use(message)
    assert block.id and block.name == "get_weather"
    assert isinstance(block.input, dict)
    jsonschema.validate(block.input, WEATHER["input_schema"])


def test_a_streamed_tool_call_accumulates_into_a_dict(client: anthropic.Anthropic) -> None:
    with client.messages.stream(
        model=MODEL, max_tokens=60, tools=[WEATHER], tool_choice=FORCE_WEATHER, messages=ASK_WEATHER
    ) as stream:
        partial = "".join(
            e.delta.partial_json
            for e in stream
            if e.type == "content_block_delta" and e.delta.type == "input_json_delta"
        )
        final = stream.get_final_message()
    block = _tool_use(final)
    assert final.stop_reason == "tool_use"
    assert isinstance(block.input, dict) and json.loads(partial) == block.input
    jsonschema.validate(block.input, WEATHER["input_schema"])


def test_a_tool_result_turn_gets_an_answer(client: anthropic.Anthropic) -> None:
    asked = client.messages.create(
        model=MODEL, max_tokens=60, tools=[WEATHER], tool_choice=FORCE_WEATHER, messages=ASK_WEATHER
    )
    call = _tool_use(asked)

    def turn(result: str) -> dict[str, Any]:
        conversation = [
            *ASK_WEATHER,
            {"role": "assistant", "content": [call.to_dict()]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": call.id, "content": result}],
            },
        ]
        # With "auto" the model may well call the tool again.
        return {
            "model": MODEL,
            "tools": [WEATHER],
            "tool_choice": {"type": "none"},
            "messages": conversation,
        }

    answer = client.messages.create(**turn("Sunny, 21 C"), max_tokens=16)
    assert answer.stop_reason in ("end_turn", "max_tokens")
    assert _text(answer).strip() and not [b for b in answer.content if b.type == "tool_use"]
    # The result is in the prompt: a longer one is more tokens, and the count is the usage's.
    short = client.messages.count_tokens(**turn("Sunny")).input_tokens
    same = client.messages.count_tokens(**turn("Sunny, 21 C")).input_tokens
    long = client.messages.count_tokens(
        **turn("Sunny, 21 C, a light west wind, no rain until Friday")
    )
    assert short < same < long.input_tokens
    assert same == _prompt_tokens(answer.usage)


def test_count_tokens_uses_the_models_tokenizer(client: anthropic.Anthropic) -> None:
    # Both with a system prompt: without one, SmolLM2's template puts in its own.
    raw = client.messages.with_raw_response.count_tokens(
        model=MODEL, system="Be brief.", messages=HELLO
    )
    assert raw.headers["x-modelyard-token-count"] == "tokenizer"
    counted = raw.parse().input_tokens
    longer = client.messages.count_tokens(
        model=MODEL, system="Be brief. You are a poet who writes about water.", messages=HELLO
    )
    assert 0 < counted < longer.input_tokens


def test_count_tokens_equals_the_prompt_tokens_of_the_answer(client: anthropic.Anthropic) -> None:
    system = "Answer briefly."
    counted = client.messages.count_tokens(model=MODEL, system=system, messages=HELLO)
    message = client.messages.create(model=MODEL, max_tokens=2, system=system, messages=HELLO)
    assert counted.input_tokens == _prompt_tokens(message.usage)


# -- a provider of kind openai ------------------------------------------------------------

OPENAI_MODEL = "test/chat-upstream"


@pytest.fixture(scope="module")
def openai_fake() -> Iterator[FakeOpenAIChat]:
    with FakeOpenAIChat() as server:
        yield server


@pytest.fixture(scope="module")
def openai_gateway(
    openai_fake: FakeOpenAIChat, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningGateway]:
    home = tmp_path_factory.mktemp("messages-openai")
    catalog = home / "catalog.toml"
    catalog.write_text(
        f"""
[[providers]]
id = "fake-chat"
kind = "openai"
base_url = "{openai_fake.base_url}"

[[models]]
id = "{OPENAI_MODEL}"
name = "A fake chat completions upstream"
context_length = 32000
max_output = 4096

[[models.endpoints]]
provider = "fake-chat"
upstream_model = "fake-model"
price = {{ prompt = 1.0, completion = 2.0 }}
"""
    )
    env = {"MODELYARD_LOAD_LOCAL": "0"}
    running = start_gateway(home / "data", extra_args=["--catalog", str(catalog)], env=env)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def upstream_client(openai_gateway: RunningGateway) -> anthropic.Anthropic:
    gw = openai_gateway
    headers = {"Authorization": f"Bearer {gw.admin_key}"}
    created = httpx.post(f"{gw.base_url}/admin/apps", json={"name": "chat"}, headers=headers)
    assert created.status_code == 201, created.text
    attached = httpx.post(
        f"{gw.base_url}/admin/apps/chat/models",
        json={"model": OPENAI_MODEL, "alias": "CHAT"},
        headers=headers,
    )
    assert attached.status_code == 201, attached.text
    key = attached.json()["config"]["CHAT_KEY"]
    return anthropic.Anthropic(base_url=gw.base_url, api_key=key, max_retries=0, timeout=30)


def _content_text(content: Any) -> str:
    """A chat message's content as text, whether a string or a list of text parts."""
    if isinstance(content, str):
        return content
    assert all(part["type"] == "text" for part in content), content
    return "".join(part["text"] for part in content)


def test_text_is_translated_both_ways(
    upstream_client: anthropic.Anthropic, openai_fake: FakeOpenAIChat
) -> None:
    message = upstream_client.messages.create(
        model=OPENAI_MODEL,
        max_tokens=50,
        system="You are terse.",
        stop_sequences=["END"],
        messages=[{"role": "user", "content": [{"type": "text", "text": "hello there"}]}],
    )
    body = openai_fake.last_body
    assert body["model"] == "fake-model"
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert _content_text(body["messages"][0]["content"]) == "You are terse."
    assert _content_text(body["messages"][1]["content"]) == "hello there"
    assert body.get("max_tokens", body.get("max_completion_tokens")) == 50
    assert body["stop"] in (["END"], "END")
    assert not {"system", "stop_sequences", "metadata", "thinking"} & set(body)
    assert [b.to_dict(exclude_none=True) for b in message.content] == [
        {"type": "text", "text": "Echo: hello there"}
    ]
    assert message.stop_reason == "end_turn"
    usage = openai_fake.usages[-1]
    assert message.usage.input_tokens == usage["prompt_tokens"]
    assert message.usage.output_tokens == usage["completion_tokens"]


def test_sampling_parameters_of_older_clients_reach_the_upstream(
    upstream_client: anthropic.Anthropic, openai_fake: FakeOpenAIChat
) -> None:
    # Messages API 2023-06-01 has temperature and top_p; this SDK no longer names them.
    upstream_client.messages.create(
        model=OPENAI_MODEL,
        max_tokens=20,
        messages=[{"role": "user", "content": "hi"}],
        extra_body={"temperature": 0.5, "top_p": 0.9},
    )
    body = openai_fake.last_body
    assert (body["temperature"], body["top_p"]) == (0.5, 0.9)


def test_tools_become_functions_and_a_call_becomes_a_tool_use_block(
    upstream_client: anthropic.Anthropic, openai_fake: FakeOpenAIChat
) -> None:
    message = upstream_client.messages.create(
        model=OPENAI_MODEL,
        max_tokens=50,
        tools=[WEATHER],
        tool_choice=FORCE_WEATHER,
        messages=ASK_WEATHER,
    )
    body = openai_fake.last_body
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city",
                "parameters": WEATHER["input_schema"],
            },
        }
    ]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert message.stop_reason == "tool_use"
    block = _tool_use(message)
    assert block.name == "get_weather" and block.id
    assert block.input == {"city": "sample", "days": 1}


def test_any_tool_choice_is_required(
    upstream_client: anthropic.Anthropic, openai_fake: FakeOpenAIChat
) -> None:
    message = upstream_client.messages.create(
        model=OPENAI_MODEL,
        max_tokens=50,
        tools=[WEATHER],
        tool_choice={"type": "any"},
        messages=ASK_WEATHER,
    )
    assert openai_fake.last_body["tool_choice"] == "required"
    assert _tool_use(message).input == {"city": "sample", "days": 1}


def test_a_tool_result_becomes_a_tool_message(
    upstream_client: anthropic.Anthropic, openai_fake: FakeOpenAIChat
) -> None:
    message = upstream_client.messages.create(
        model=OPENAI_MODEL,
        max_tokens=50,
        tools=[WEATHER],
        messages=[
            *ASK_WEATHER,
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Let me look."},
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
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_01", "content": "Sunny, 21 C"}
                ],
            },
        ],
    )
    sent = openai_fake.last_body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool"]
    assistant, tool = sent[1], sent[2]
    assert _content_text(assistant["content"]) == "Let me look."
    (call,) = assistant["tool_calls"]
    assert (call["id"], call["type"], call["function"]["name"]) == (
        "toolu_01",
        "function",
        "get_weather",
    )
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}
    assert tool["tool_call_id"] == "toolu_01"
    assert _content_text(tool["content"]) == "Sunny, 21 C"
    assert _text(message) == "Tool said: Sunny, 21 C"


def test_streamed_text_from_an_openai_upstream(
    upstream_client: anthropic.Anthropic, openai_fake: FakeOpenAIChat
) -> None:
    with upstream_client.messages.stream(
        model=OPENAI_MODEL, max_tokens=50, messages=[{"role": "user", "content": "one two three"}]
    ) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert openai_fake.last_body["stream"] is True
    assert "".join(pieces) == "Echo: one two three" and len(pieces) > 1
    assert final.stop_reason == "end_turn"
    usage = openai_fake.usages[-1]
    assert (final.usage.input_tokens, final.usage.output_tokens) == (
        usage["prompt_tokens"],
        usage["completion_tokens"],
    )


def test_a_streamed_tool_call_arrives_as_input_json_deltas(
    upstream_client: anthropic.Anthropic, openai_fake: FakeOpenAIChat
) -> None:
    with upstream_client.messages.stream(
        model=OPENAI_MODEL,
        max_tokens=50,
        tools=[WEATHER],
        tool_choice=FORCE_WEATHER,
        messages=ASK_WEATHER,
    ) as stream:
        events = list(stream)
        final = stream.get_final_message()
    deltas = [
        e.delta.partial_json
        for e in events
        if e.type == "content_block_delta" and e.delta.type == "input_json_delta"
    ]
    assert len([d for d in deltas if d]) > 1
    assert json.loads("".join(deltas)) == {"city": "sample", "days": 1}
    starts = [e for e in events if e.type == "content_block_start"]
    assert [s.content_block.type for s in starts] == ["tool_use"]
    assert final.stop_reason == "tool_use"
    assert _tool_use(final).input == {"city": "sample", "days": 1}


def test_count_tokens_for_an_openai_upstream_is_an_estimate(
    upstream_client: anthropic.Anthropic, openai_fake: FakeOpenAIChat
) -> None:
    before = len(openai_fake.received)
    raw = upstream_client.messages.with_raw_response.count_tokens(
        model=OPENAI_MODEL, messages=ASK_WEATHER, tools=[WEATHER]
    )
    assert raw.headers["x-modelyard-token-count"] == "estimate"
    assert raw.parse().input_tokens > 0
    assert len(openai_fake.received) == before  # nothing was sent upstream


def test_the_ledger_says_the_request_came_through_messages(
    upstream_client: anthropic.Anthropic, openai_gateway: RunningGateway
) -> None:
    """The generation id header, the ledger row (priced as chat is) and the app's usage by
    API: /v1/messages shares them with every front door."""
    raw = upstream_client.messages.with_raw_response.create(
        model=OPENAI_MODEL, max_tokens=20, messages=[{"role": "user", "content": "ledger me"}]
    )
    message = raw.parse()
    gen_id = raw.headers["x-generation-id"]
    assert gen_id.startswith("gen-") and message.id == gen_id
    key = upstream_client.api_key
    row = httpx.get(
        f"{openai_gateway.base_url}/v1/generation",
        params={"id": gen_id},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert row.status_code == 200, row.text
    data = row.json()["data"]
    assert data["tokens_prompt"] == message.usage.input_tokens
    assert data["tokens_completion"] == message.usage.output_tokens
    price = (data["tokens_prompt"] * 1.0 + data["tokens_completion"] * 2.0) / 1_000_000
    assert data["total_cost"] == pytest.approx(price)
    admin = {"Authorization": f"Bearer {openai_gateway.admin_key}"}
    usage = httpx.get(f"{openai_gateway.base_url}/admin/apps/chat/usage", headers=admin)
    assert usage.status_code == 200, usage.text
    apis = {row["api"] for row in usage.json()["data"]}
    assert "messages" in apis, usage.text
