"""Parsing and validating the Chat Completions request from bytes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from modelyard.errors import InvalidRequest
from modelyard.schema.chat import (
    AssistantMessage,
    ImagePart,
    JsonSchemaFormat,
    NamedToolChoice,
    TextPart,
    ToolMessage,
    parse_chat_request,
)

USER = [{"role": "user", "content": "hi"}]


def body(**fields: Any) -> bytes:
    return json.dumps({"model": "google/gemma-3-270m", "messages": USER, **fields}).encode()


def test_minimal_request_has_no_parameters_set() -> None:
    request = parse_chat_request(body())
    assert request.model == "google/gemma-3-270m"
    assert request.sent_parameters() == set()
    assert request.stream is False


def test_all_message_shapes_parse() -> None:
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "developer", "content": [{"type": "text", "text": "dev"}]},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is this?", "cache_control": {"type": "ephemeral"}},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "42"},
        {"role": "assistant", "content": "The answer is"},
    ]
    request = parse_chat_request(body(messages=messages))
    user = request.messages[2]
    assert isinstance(user.content, list)
    assert isinstance(user.content[0], TextPart)
    assert isinstance(user.content[1], ImagePart)
    assert isinstance(request.messages[3], AssistantMessage)
    assert isinstance(request.messages[4], ToolMessage)


def test_sampling_parameters_and_output_limit() -> None:
    request = parse_chat_request(
        body(
            temperature=0,
            top_p=0.5,
            top_k=10,
            seed=7,
            max_tokens=9,
            max_completion_tokens=5,
            stop="x",
            logprobs=True,
            top_logprobs=2,
            unknown_field={"ignored": True},
        )
    )
    assert request.output_limit == 5
    assert request.stop_sequences == ["x"]
    assert {"temperature", "top_p", "top_k", "seed", "max_tokens", "stop", "logprobs"} <= (
        request.sent_parameters()
    )


def test_tools_and_structured_outputs() -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    request = parse_chat_request(
        body(
            tools=tools,
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "x", "schema": {"type": "object"}},
            },
        )
    )
    assert isinstance(request.tool_choice, NamedToolChoice)
    assert isinstance(request.response_format, JsonSchemaFormat)


def test_models_fallback_list_can_replace_model() -> None:
    raw = json.dumps({"models": ["a/b", "c/d", "a/b"], "messages": USER}).encode()
    assert parse_chat_request(raw).model_names() == ["a/b", "c/d"]


TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}

BAD: list[tuple[str, bytes, str | None]] = [
    ("not json", b"{nope", None),
    ("not an object", b"[1, 2]", None),
    ("no messages", json.dumps({"model": "m"}).encode(), "messages"),
    ("empty messages", body(messages=[]), "messages"),
    ("no model", json.dumps({"messages": USER}).encode(), "model"),
    ("unknown role", body(messages=[{"role": "wizard", "content": "x"}]), "messages[0].role"),
    ("content wrong type", body(messages=[{"role": "user", "content": 5}]), "messages[0].content"),
    ("empty content list", body(messages=[{"role": "user", "content": []}]), "messages[0].content"),
    (
        "unknown part type",
        body(messages=[{"role": "user", "content": [{"type": "video"}]}]),
        "messages[0].content[0].type",
    ),
    (
        "image in system",
        body(
            messages=[
                {
                    "role": "system",
                    "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}],
                }
            ]
        ),
        "messages[0].content[0]",
    ),
    (
        "bad image url",
        body(
            messages=[
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}],
                }
            ]
        ),
        "messages[0].content[0].image_url.url",
    ),
    ("assistant without content", body(messages=[{"role": "assistant"}]), "messages[0].content"),
    (
        "tool without id",
        body(messages=[{"role": "tool", "content": "x"}]),
        "messages[0].tool_call_id",
    ),
    ("temperature too high", body(temperature=2.5), "temperature"),
    ("temperature string", body(temperature="hot"), "temperature"),
    ("top_p above 1", body(top_p=1.5), "top_p"),
    ("negative top_k", body(top_k=-1), "top_k"),
    ("penalty out of range", body(frequency_penalty=3), "frequency_penalty"),
    ("repetition penalty", body(repetition_penalty=-1), "repetition_penalty"),
    ("max_tokens zero", body(max_tokens=0), "max_tokens"),
    ("max_tokens bool", body(max_tokens=True), "max_tokens"),
    ("too many stops", body(stop=["a", "b", "c", "d", "e"]), "stop"),
    ("stop wrong type", body(stop=5), "stop"),
    ("logit_bias key", body(logit_bias={"hello": 1}), "logit_bias"),
    ("logit_bias value", body(logit_bias={"5": 500}), "logit_bias"),
    ("top_logprobs range", body(logprobs=True, top_logprobs=21), "top_logprobs"),
    ("top_logprobs without logprobs", body(top_logprobs=2), "top_logprobs"),
    ("n above 1", body(n=2), "n"),
    (
        "tool not function",
        body(tools=[{"type": "retrieval", "function": {"name": "f"}}]),
        "tools[0].type",
    ),
    (
        "tool missing name",
        body(tools=[{"type": "function", "function": {}}]),
        "tools[0].function.name",
    ),
    (
        "tool bad name",
        body(tools=[{"type": "function", "function": {"name": "a b"}}]),
        "tools[0].function.name",
    ),
    (
        "tool params not object",
        body(
            tools=[
                {"type": "function", "function": {"name": "f", "parameters": {"type": "string"}}}
            ]
        ),
        "tools[0].function.parameters",
    ),
    ("duplicate tool", body(tools=[TOOL, TOOL]), "tools[1].function.name"),
    (
        "tool_choice unknown tool",
        body(tools=[TOOL], tool_choice={"type": "function", "function": {"name": "g"}}),
        "tool_choice",
    ),
    ("tool_choice without tools", body(tool_choice="required"), "tool_choice"),
    ("tool_choice bad string", body(tools=[TOOL], tool_choice="sometimes"), "tool_choice"),
    ("response_format unknown", body(response_format={"type": "yaml"}), "response_format.type"),
    (
        "json_schema without name",
        body(response_format={"type": "json_schema", "json_schema": {"schema": {}}}),
        "response_format.json_schema.name",
    ),
    (
        "stream_options without stream",
        body(stream_options={"include_usage": True}),
        "stream_options",
    ),
    ("stream not bool", body(stream="yes"), "stream"),
    ("provider sort unknown", body(provider={"sort": "vibes"}), "provider.sort"),
]


@pytest.mark.parametrize(("case", "raw", "param"), BAD, ids=[c[0] for c in BAD])
def test_bad_input_is_an_invalid_request_naming_the_parameter(
    case: str, raw: bytes, param: str | None
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_chat_request(raw)
    error = caught.value
    assert error.status == 400
    assert error.param == param, error.message
    if param:
        assert param.split(".")[0].split("[")[0] in error.message


def test_invalid_utf8_is_a_400() -> None:
    with pytest.raises(InvalidRequest, match="UTF-8"):
        parse_chat_request(b'{"model": "\xff", "messages": []}')
