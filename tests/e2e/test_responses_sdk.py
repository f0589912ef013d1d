"""/v1/responses through the official openai SDK (`client.responses.*`).

Two backends: the embedded llama.cpp model of the default catalog (the shared `gateway`
of conftest), and a provider of kind `openai` pointing at `FakeOpenAIChat` (tests/fakes),
which records the chat completions request the gateway makes of a Responses request.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import openai
import pytest
from openai.types.responses import (
    FunctionToolParam,
    Response,
    ResponseFunctionToolCall,
    ResponseInputParam,
    ResponseStreamEvent,
    ToolChoiceFunctionParam,
)
from pydantic import BaseModel

from tests.e2e.conftest import MODEL
from tests.e2e.server import RunningGateway, start_gateway
from tests.fakes.openai_chat import FakeOpenAIChat, catalog_toml

SEA = "Write one sentence about the sea."
WEATHER: FunctionToolParam = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city"],
    },
    "strict": False,
}
FORCE_WEATHER: ToolChoiceFunctionParam = {"type": "function", "name": "get_weather"}
ASK_WEATHER: ResponseInputParam = [{"role": "user", "content": "What is the weather in Paris?"}]
CITY_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
    "required": ["city", "population"],
    "additionalProperties": False,
}


# Each stream event's class by its `type` (the SDK itself parses leniently, so a missing
# required field would pass through it unnoticed).
EVENT_CLASSES: dict[str, type[BaseModel]] = {
    typing.get_args(cls.model_fields["type"].annotation)[0]: cls
    for cls in typing.get_args(typing.get_args(ResponseStreamEvent)[0])
}


def _function_call(response: Response) -> ResponseFunctionToolCall:
    (item,) = [i for i in response.output if i.type == "function_call"]
    assert isinstance(item, ResponseFunctionToolCall)
    return item


def _check_usage(response: Response, *, most: int | None = None) -> None:
    usage = response.usage
    assert usage is not None
    assert usage.input_tokens > 0 and usage.output_tokens > 0
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert usage.input_tokens_details.cached_tokens >= 0
    assert usage.output_tokens_details.reasoning_tokens == 0
    if most is not None:
        assert usage.output_tokens <= most


def _check_sequence(events: list[Any]) -> None:
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[0].type == "response.created" and events[1].type == "response.in_progress"
    assert events[0].response.status == "in_progress" and events[0].response.output == []


def _same_shape(streamed: Response, plain: Response) -> None:
    """Two answers to the same request, one streamed: equal but for ids and times, the
    fake's call ids (which count its requests) and the `parsed` the SDK's stream helper
    adds to text parts."""

    def masked(response: Response) -> dict[str, Any]:
        body: dict[str, Any] = response.to_dict()
        for name in ("id", "created_at", "completed_at"):
            body.pop(name, None)
        for item in body["output"]:
            item.pop("id", None)
            item.pop("call_id", None)
            for part in item.get("content", []):
                part.pop("parsed", None)
        return body

    assert masked(streamed) == masked(plain)


# -- the embedded model -------------------------------------------------------------------


def test_create_answers_a_response(client: openai.OpenAI) -> None:
    raw = client.responses.with_raw_response.create(model=MODEL, input=SEA, max_output_tokens=16)
    response = raw.parse()
    assert response.id.startswith("resp_") and response.object == "response"
    assert response.model == MODEL and response.status in ("completed", "incomplete")
    assert response.created_at > 1_700_000_000
    (message,) = response.output
    assert message.type == "message" and message.role == "assistant"
    assert message.id and message.id != response.id
    assert message.status == response.status  # a message cut short is incomplete too
    assert [part.type for part in message.content] == ["output_text"]
    assert response.output_text.strip() and response.output_text == message.content[0].text
    assert response.max_output_tokens == 16 and response.error is None
    _check_usage(response, most=16)
    assert raw.headers["x-generation-id"].startswith("gen-")
    assert raw.headers["x-ratelimit-limit-requests"] == "600"  # the catalog's rpm for it
    assert int(raw.headers["x-ratelimit-remaining-requests"]) < 600


def test_the_api_prefix_and_a_list_of_input_items(gateway: RunningGateway) -> None:
    client = openai.OpenAI(
        base_url=gateway.base_url + "/api/v1", api_key=gateway.app_key, max_retries=0
    )
    response = client.responses.create(
        model=MODEL,
        instructions="You write about the sea.",
        input=[{"role": "user", "content": [{"type": "input_text", "text": SEA}]}],
        max_output_tokens=16,
    )
    assert response.output_text.strip() and response.instructions == "You write about the sea."


async def test_async_create(gateway: RunningGateway) -> None:
    client = openai.AsyncOpenAI(base_url=gateway.api_url, api_key=gateway.app_key, max_retries=0)
    response = await client.responses.create(model=MODEL, input=SEA, max_output_tokens=16)
    assert response.output_text.strip()
    _check_usage(response, most=16)
    await client.close()


def test_max_output_tokens_cuts_as_incomplete(client: openai.OpenAI) -> None:
    response = client.responses.create(
        model=MODEL,
        input="Tell me a very long story about a dragon.",
        max_output_tokens=16,  # OpenAI's least
        temperature=0,
    )
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.output_text.strip()
    assert response.usage is not None and response.usage.output_tokens == 16


def test_raw_stream_events_come_in_openais_order(client: openai.OpenAI) -> None:
    events = list(
        client.responses.create(model=MODEL, input=SEA, max_output_tokens=16, stream=True)
    )
    _check_sequence(events)
    kinds = [e.type for e in events]
    assert kinds[2:4] == ["response.output_item.added", "response.content_part.added"]
    assert kinds[-4:-1] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
    ]
    assert kinds[-1] in ("response.completed", "response.incomplete")
    assert set(kinds[4:-4]) == {"response.output_text.delta"}
    added, last = events[2], events[-1]
    assert added.type == "response.output_item.added" and added.item.type == "message"
    deltas = [e for e in events if e.type == "response.output_text.delta"]
    assert {(d.item_id, d.output_index, d.content_index) for d in deltas} == {(added.item.id, 0, 0)}
    text = "".join(d.delta for d in deltas)
    done = events[-4]
    assert done.type == "response.output_text.done" and done.text == text and text.strip()
    assert last.type in ("response.completed", "response.incomplete")
    final = last.response
    assert final.id == events[0].response.id and final.output_text == text
    assert final.output[0].id == added.item.id
    assert final.status == ("completed" if last.type == "response.completed" else "incomplete")
    _check_usage(final, most=16)


def test_the_stream_helper_gives_text_and_the_final_response(client: openai.OpenAI) -> None:
    # A schema the grammar closes, so the answer completes rather than running out.
    text: Any = {"format": {"type": "json_schema", "name": "city", "schema": CITY_SCHEMA}}
    with client.responses.stream(
        model=MODEL, input="Name a city and its population.", text=text, max_output_tokens=64
    ) as stream:
        pieces = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert len(pieces) > 1 and "".join(pieces) == final.output_text
    jsonschema.validate(json.loads(final.output_text), CITY_SCHEMA)
    assert final.status == "completed"
    _check_usage(final, most=64)


def test_a_forced_function_call(client: openai.OpenAI) -> None:
    response = client.responses.create(
        model=MODEL,
        input=ASK_WEATHER,
        tools=[WEATHER],
        tool_choice=FORCE_WEATHER,
        max_output_tokens=60,
    )
    assert response.status == "completed"
    call = _function_call(response)
    assert call.name == "get_weather" and call.call_id and call.id != call.call_id
    jsonschema.validate(json.loads(call.arguments), WEATHER["parameters"])
    assert [t.type for t in response.tools] == ["function"]
    assert response.tool_choice.type == "function"
    assert response.tool_choice.name == "get_weather"


def test_a_streamed_function_call(client: openai.OpenAI) -> None:
    with client.responses.stream(
        model=MODEL,
        input=ASK_WEATHER,
        tools=[WEATHER],
        tool_choice=FORCE_WEATHER,
        max_output_tokens=60,
    ) as stream:
        events = list(stream)
        final = stream.get_final_response()
    _check_sequence(events)
    pieces = [e.delta for e in events if e.type == "response.function_call_arguments.delta"]
    (done,) = [e for e in events if e.type == "response.function_call_arguments.done"]
    call = _function_call(final)
    assert "".join(pieces) == done.arguments == call.arguments
    jsonschema.validate(json.loads(call.arguments), WEATHER["parameters"])
    (added,) = [e for e in events if e.type == "response.output_item.added"]
    assert added.item.type == "function_call" and added.item.call_id == call.call_id
    assert added.item.name == "get_weather" and added.item.arguments == ""


def test_a_function_call_output_gets_an_answer(client: openai.OpenAI) -> None:
    asked = client.responses.create(
        model=MODEL,
        input=ASK_WEATHER,
        tools=[WEATHER],
        tool_choice=FORCE_WEATHER,
        max_output_tokens=60,
    )
    call = _function_call(asked)
    answer = client.responses.create(
        model=MODEL,
        input=[
            *ASK_WEATHER,
            call.to_dict(),  # as the docs say: resend the output
            {"type": "function_call_output", "call_id": call.call_id, "output": "Sunny, 21 C"},
        ],
        tools=[WEATHER],
        tool_choice="none",  # with "auto" the model may well call it again
        max_output_tokens=16,
    )
    assert [i.type for i in answer.output] == ["message"] and answer.output_text.strip()


def test_structured_output_matches_the_schema(client: openai.OpenAI) -> None:
    response = client.responses.create(
        model=MODEL,
        input="Name a city and its population.",
        text={
            "format": {"type": "json_schema", "name": "city", "schema": CITY_SCHEMA, "strict": True}
        },
        max_output_tokens=64,
    )
    jsonschema.validate(json.loads(response.output_text), CITY_SCHEMA)
    assert response.text is not None and response.text.format is not None
    assert response.text.format.type == "json_schema"


class City(BaseModel):
    city: str
    population: int


def test_parse_gives_a_pydantic_object(client: openai.OpenAI) -> None:
    parsed = client.responses.parse(
        model=MODEL,
        input="Name a city and its population.",
        text_format=City,
        max_output_tokens=64,
    )
    assert isinstance(parsed.output_parsed, City)
    assert City.model_validate_json(parsed.output_text) == parsed.output_parsed


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
    home = tmp_path_factory.mktemp("responses-openai")
    catalog = home / "catalog.toml"
    catalog.write_text(catalog_toml(openai_fake.base_url, {OPENAI_MODEL: ""}))
    env = {"MODELYARD_LOAD_LOCAL": "0"}
    running = start_gateway(home / "data", extra_args=["--catalog", str(catalog)], env=env)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def upstream_client(openai_gateway: RunningGateway) -> openai.OpenAI:
    gw = openai_gateway
    headers = {"Authorization": f"Bearer {gw.admin_key}"}
    created = httpx.post(f"{gw.base_url}/admin/apps", json={"name": "resp"}, headers=headers)
    assert created.status_code == 201, created.text
    attached = httpx.post(
        f"{gw.base_url}/admin/apps/resp/models",
        json={"model": OPENAI_MODEL, "alias": "CHAT"},
        headers=headers,
    )
    assert attached.status_code == 201, attached.text
    key = attached.json()["config"]["CHAT_KEY"]
    return openai.OpenAI(base_url=gw.api_url, api_key=key, max_retries=0, timeout=30)


def _content_text(content: Any) -> str:
    """A chat message's content as text, whether a string or a list of text parts."""
    if isinstance(content, str):
        return content
    assert all(part["type"] == "text" for part in content), content
    return "".join(part["text"] for part in content)


def _usage_matches(response: Response, fake: FakeOpenAIChat) -> None:
    usage, sent = response.usage, fake.usages[-1]
    assert usage is not None
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (
        sent["prompt_tokens"],
        sent["completion_tokens"],
        sent["total_tokens"],
    )


def test_a_request_is_translated_both_ways(
    upstream_client: openai.OpenAI, openai_fake: FakeOpenAIChat
) -> None:
    response = upstream_client.responses.create(
        model=OPENAI_MODEL,
        instructions="You are terse.",
        input=[{"role": "user", "content": [{"type": "input_text", "text": "hello there"}]}],
        max_output_tokens=50,
        temperature=0.5,
        top_p=0.9,
        user="user-7",
        metadata={"ticket": "T-1"},
        store=False,
    )
    body = openai_fake.last_body
    assert body["model"] == "fake-model"
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert _content_text(body["messages"][0]["content"]) == "You are terse."
    assert _content_text(body["messages"][1]["content"]) == "hello there"
    assert body.get("max_tokens", body.get("max_completion_tokens")) == 50
    assert (body["temperature"], body["top_p"], body["user"]) == (0.5, 0.9, "user-7")
    # Responses-only fields are the gateway's, not the upstream's.
    assert not {"input", "instructions", "metadata", "store", "max_output_tokens", "text"} & set(
        body
    )
    assert response.output_text == "Echo: hello there" and response.status == "completed"
    assert response.model == OPENAI_MODEL
    assert (response.temperature, response.top_p, response.user) == (0.5, 0.9, "user-7")
    assert response.metadata == {"ticket": "T-1"} and response.instructions == "You are terse."
    _usage_matches(response, openai_fake)


def test_reasoning_is_taken_and_echoed(upstream_client: openai.OpenAI) -> None:
    response = upstream_client.responses.create(
        model=OPENAI_MODEL, input="think", reasoning={"effort": "low"}, store=False
    )
    assert response.reasoning is not None and response.reasoning.effort == "low"
    assert response.output_text == "Echo: think"


def test_a_plain_string_input_is_one_user_message(
    upstream_client: openai.OpenAI, openai_fake: FakeOpenAIChat
) -> None:
    response = upstream_client.responses.create(model=OPENAI_MODEL, input="one two", store=False)
    messages = openai_fake.last_body["messages"]
    assert [(m["role"], _content_text(m["content"])) for m in messages] == [("user", "one two")]
    assert response.output_text == "Echo: one two"


def test_a_json_schema_format_becomes_response_format(
    upstream_client: openai.OpenAI, openai_fake: FakeOpenAIChat
) -> None:
    upstream_client.responses.create(
        model=OPENAI_MODEL,
        input="a city",
        text={
            "format": {"type": "json_schema", "name": "city", "schema": CITY_SCHEMA, "strict": True}
        },
        store=False,
    )
    assert openai_fake.last_body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "city", "schema": CITY_SCHEMA, "strict": True},
    }


def test_function_tools_become_chat_tools(
    upstream_client: openai.OpenAI, openai_fake: FakeOpenAIChat
) -> None:
    response = upstream_client.responses.create(
        model=OPENAI_MODEL,
        input=ASK_WEATHER,
        tools=[WEATHER],
        tool_choice=FORCE_WEATHER,
        parallel_tool_calls=False,
        store=False,
    )
    body = openai_fake.last_body
    (tool,) = body["tools"]
    assert tool["type"] == "function"
    assert tool["function"]["name"] == "get_weather"
    assert tool["function"]["description"] == "Weather for a city"
    assert tool["function"]["parameters"] == WEATHER["parameters"]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body["parallel_tool_calls"] is False
    assert response.status == "completed" and response.parallel_tool_calls is False
    call = _function_call(response)
    assert call.call_id == f"call_{len(openai_fake.received):04d}"  # the upstream's id
    assert call.name == "get_weather" and json.loads(call.arguments) == {
        "city": "sample",
        "days": 1,
    }
    assert call.status == "completed"


def test_hosted_tools_are_left_out(
    upstream_client: openai.OpenAI, openai_fake: FakeOpenAIChat
) -> None:
    """Nothing here runs OpenAI's hosted tools; clients offer them anyway (Codex does)."""
    response = upstream_client.responses.create(
        model=OPENAI_MODEL,
        input="one two",
        tools=[{"type": "web_search"}, WEATHER],
        store=False,
    )
    assert [t["function"]["name"] for t in openai_fake.last_body["tools"]] == ["get_weather"]
    assert response.output_text == "Echo: one two"


def test_required_tool_choice_is_passed_on(
    upstream_client: openai.OpenAI, openai_fake: FakeOpenAIChat
) -> None:
    response = upstream_client.responses.create(
        model=OPENAI_MODEL, input=ASK_WEATHER, tools=[WEATHER], tool_choice="required", store=False
    )
    assert openai_fake.last_body["tool_choice"] == "required"
    assert _function_call(response).name == "get_weather"


def test_a_function_call_output_becomes_a_tool_message_both_ways(
    upstream_client: openai.OpenAI, openai_fake: FakeOpenAIChat
) -> None:
    """Continued with previous_response_id, or stateless with the items resent: the
    upstream gets the same conversation, the function's output as a `tool` message."""
    asked = upstream_client.responses.create(
        model=OPENAI_MODEL, input=ASK_WEATHER, tools=[WEATHER], tool_choice=FORCE_WEATHER
    )
    call = _function_call(asked)
    result = {"type": "function_call_output", "call_id": call.call_id, "output": "Sunny, 21 C"}
    chained = upstream_client.responses.create(
        model=OPENAI_MODEL,
        previous_response_id=asked.id,
        input=[result],
        tools=[WEATHER],
    )
    chained_messages = openai_fake.last_body["messages"]
    stateless = upstream_client.responses.create(
        model=OPENAI_MODEL,
        input=[*ASK_WEATHER, call.to_dict(), result],
        tools=[WEATHER],
        store=False,
    )
    stateless_messages = openai_fake.last_body["messages"]
    assert [m["role"] for m in stateless_messages] == ["user", "assistant", "tool"]
    (sent_call,) = stateless_messages[1]["tool_calls"]
    assert sent_call["id"] == call.call_id and sent_call["type"] == "function"
    assert sent_call["function"]["name"] == "get_weather"
    assert json.loads(sent_call["function"]["arguments"]) == json.loads(call.arguments)
    tool = stateless_messages[2]
    assert tool["tool_call_id"] == call.call_id and _content_text(tool["content"]) == "Sunny, 21 C"
    assert chained_messages == stateless_messages
    for answer in (chained, stateless):
        assert answer.output_text == "Tool said: Sunny, 21 C"
    assert chained.previous_response_id == asked.id and stateless.previous_response_id is None


def test_streamed_text_from_an_openai_upstream(
    upstream_client: openai.OpenAI, openai_fake: FakeOpenAIChat
) -> None:
    request: dict[str, Any] = {"model": OPENAI_MODEL, "input": "one two three", "store": False}
    with upstream_client.responses.stream(**request) as stream:
        events = list(stream)
        final = stream.get_final_response()
    assert openai_fake.last_body["stream"] is True
    _check_sequence(events)
    pieces = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert pieces == ["Echo:", " one", " two", " three"]
    assert final.output_text == "Echo: one two three" and final.status == "completed"
    assert events[-1].type == "response.completed"
    _usage_matches(final, openai_fake)
    _same_shape(final, upstream_client.responses.create(**request))


def test_a_streamed_function_call_from_an_openai_upstream(
    upstream_client: openai.OpenAI, openai_fake: FakeOpenAIChat
) -> None:
    request: dict[str, Any] = {
        "model": OPENAI_MODEL,
        "input": ASK_WEATHER,
        "tools": [WEATHER],
        "tool_choice": FORCE_WEATHER,
        "store": False,
    }
    stream = upstream_client.responses.create(**request, stream=True)
    events = list(stream)
    _check_sequence(events)
    kinds = [e.type for e in events]
    assert kinds[2] == "response.output_item.added" and kinds[-1] == "response.completed"
    assert kinds[-3:-1] == ["response.function_call_arguments.done", "response.output_item.done"]
    pieces = [e.delta for e in events if e.type == "response.function_call_arguments.delta"]
    assert len([p for p in pieces if p]) > 1
    assert json.loads("".join(pieces)) == {"city": "sample", "days": 1}
    final = events[-1].response
    assert [item.type for item in final.output] == ["function_call"]  # no empty message
    call = _function_call(final)
    assert call.arguments == "".join(pieces) and call.name == "get_weather"
    assert call.call_id == f"call_{len(openai_fake.received):04d}"
    _same_shape(final, upstream_client.responses.create(**request))


def test_the_ledger_says_the_request_came_through_responses(
    upstream_client: openai.OpenAI, openai_gateway: RunningGateway
) -> None:
    raw = upstream_client.responses.with_raw_response.create(
        model=OPENAI_MODEL, input="ledger me", store=False
    )
    response = raw.parse()
    gen_id = raw.headers["x-generation-id"]
    assert gen_id.startswith("gen-")
    row = httpx.get(
        f"{openai_gateway.base_url}/v1/generation",
        params={"id": gen_id},
        headers={"Authorization": f"Bearer {upstream_client.api_key}"},
    )
    assert row.status_code == 200, row.text
    data = row.json()["data"]
    assert response.usage is not None
    assert data["tokens_prompt"] == response.usage.input_tokens
    assert data["tokens_completion"] == response.usage.output_tokens
    price = (data["tokens_prompt"] * 1.0 + data["tokens_completion"] * 2.0) / 1_000_000
    assert data["total_cost"] == pytest.approx(price)
    admin = {"Authorization": f"Bearer {openai_gateway.admin_key}"}
    usage = httpx.get(f"{openai_gateway.base_url}/admin/apps/resp/usage", headers=admin)
    assert usage.status_code == 200, usage.text
    assert "responses" in {row["api"] for row in usage.json()["data"]}, usage.text


@pytest.mark.parametrize("tools", [False, True], ids=["text", "function_call"])
def test_the_wire_validates_against_the_sdks_types(
    openai_gateway: RunningGateway, upstream_client: openai.OpenAI, tools: bool
) -> None:
    """Strictly, every required field: the JSON body, and each SSE frame's `event:` name
    and data."""
    body: dict[str, Any] = {"model": OPENAI_MODEL, "input": ASK_WEATHER, "store": False}
    if tools:
        body |= {"tools": [WEATHER], "tool_choice": FORCE_WEATHER}
    url = openai_gateway.api_url + "/responses"
    headers = {"Authorization": f"Bearer {upstream_client.api_key}"}
    plain = httpx.post(url, json=body, headers=headers, timeout=30)
    assert plain.status_code == 200, plain.text
    assert plain.headers["content-type"].startswith("application/json")
    Response.model_validate(plain.json())
    with httpx.stream(
        "POST", url, json={**body, "stream": True}, headers=headers, timeout=30
    ) as streamed:
        assert streamed.headers["content-type"].startswith("text/event-stream")
        frames = [f for f in streamed.read().decode().split("\n\n") if f.strip()]
    kinds = []
    for frame in frames:
        lines = dict(line.split(": ", 1) for line in frame.split("\n"))
        data = json.loads(lines["data"])
        assert lines["event"] == data["type"], frame
        EVENT_CLASSES[data["type"]].model_validate(data)
        kinds.append(data["type"])
    assert kinds[-1] == "response.completed"
    item = "response.function_call_arguments.delta" if tools else "response.output_text.delta"
    assert item in kinds
