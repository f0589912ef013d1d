"""Provider kind `anthropic` end to end: openai SDK → gateway → a fake Anthropic API.

The gateway runs in-process under uvicorn on 127.0.0.1 with a catalog whose providers
point at `FakeAnthropic` (tests/fakes), which validates requests as the Messages API does
and records them, so each test checks both the translation sent upstream and what the
client gets back.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import uvicorn
from pydantic import BaseModel

from modelyard.app import build_app
from modelyard.catalog.catalog import build_catalog
from modelyard.catalog.spec import EndpointSpec, ModelSpec, ProviderSpec
from modelyard.config import Settings
from modelyard.gateway import Gateway
from modelyard.providers.anthropic import ANTHROPIC_KIND, AnthropicProvider
from modelyard.providers.base import Delta
from modelyard.providers.registry import ProviderContext, ProviderRegistry, builtin_registry
from modelyard.schema.chat import parse_chat_request
from tests.e2e.server import free_port
from tests.fakes.anthropic_server import API_KEY, FakeAnthropic

KEY_ENV = "MODELYARD_TEST_FAKE_ANTHROPIC_KEY"
BAD_KEY_ENV = "MODELYARD_TEST_FAKE_ANTHROPIC_BAD_KEY"
ADMIN_KEY = "anthropic-test-admin-key"
PNG = (  # a 1x1 PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9Q"
    "DwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def _catalog(base_url: str) -> str:
    providers = "".join(
        f'[[providers]]\nid = "{pid}"\nkind = "anthropic"\nbase_url = "{base_url}"\n'
        f'api_key_env = "{env}"\n\n'
        for pid, env in (
            ("fake-anthropic", KEY_ENV),
            ("fake-anthropic-backup", KEY_ENV),
            ("fake-anthropic-badkey", BAD_KEY_ENV),
        )
    )

    def model(model_id: str, *endpoints: tuple[str, str]) -> str:
        text = (
            f'[[models]]\nid = "{model_id}"\nname = "{model_id}"\ncontext_length = 200000\n'
            'max_output = 4096\ninput_modalities = ["text", "image", "file"]\n\n'
        )
        for provider, upstream in endpoints:
            text += (
                f'[[models.endpoints]]\nprovider = "{provider}"\nupstream_model = "{upstream}"\n'
                "price = { prompt = 1.0, completion = 5.0, cache_read = 0.1, cache_write = 1.25 }"
                "\n\n"
            )
        return text

    return providers + "".join(
        [
            model("test/claude", ("fake-anthropic", "claude-test")),
            model(
                "test/claude-pair",
                ("fake-anthropic", "claude-test"),
                ("fake-anthropic-backup", "claude-test"),
            ),
            model(
                "test/claude-fallback",
                ("fake-anthropic", "overloaded-claude"),
                ("fake-anthropic-backup", "claude-test"),
            ),
            model("test/claude-badkey", ("fake-anthropic-badkey", "claude-test")),
            model("test/claude-cached", ("fake-anthropic", "claude-test")).replace(
                "max_output = 4096\n", "max_output = 4096\nprompt_cache_min_tokens = 1024\n", 1
            ),
        ]
    )


class Harness:
    def __init__(self, tmp: Path, fake: FakeAnthropic) -> None:
        self.fake = fake
        catalog_file = tmp / "catalog.toml"
        catalog_file.write_text(_catalog(fake.base_url))
        self.port = free_port()
        settings = Settings(
            # example.com does not resolve here; the policy's own tests cover refusal.
            image_url_allow="example.com",
            port=self.port,
            data_dir=tmp,
            catalog_file=catalog_file,
            admin_key=ADMIN_KEY,
            keepalive_interval_s=0.5,
            admin_can_infer=True,
            bootstrap_app=False,
        )
        # Only the adapter under test: the built-in catalog's local model is not loaded.
        registry = ProviderRegistry()
        registry.register(ANTHROPIC_KIND, AnthropicProvider)
        app = build_app(settings, Gateway.create(settings, providers=registry))
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Harness:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "gateway did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    saved = {name: os.environ.get(name) for name in (KEY_ENV, BAD_KEY_ENV)}
    os.environ[KEY_ENV] = API_KEY
    os.environ[BAD_KEY_ENV] = "sk-ant-revoked"
    try:
        with FakeAnthropic() as fake, Harness(tmp_path_factory.mktemp("anthropic"), fake) as h:
            yield h
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture
def fake(harness: Harness) -> FakeAnthropic:
    return harness.fake


@pytest.fixture
def sdk(harness: Harness) -> openai.OpenAI:
    return openai.OpenAI(base_url=harness.base_url, api_key=ADMIN_KEY, max_retries=0)


def _extra(model: BaseModel) -> dict[str, Any]:
    """The fields the openai SDK does not define (provider, reasoning, ...)."""
    return model.model_extra or {}


def _user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


def _post(harness: Harness, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        harness.base_url + "/chat/completions",
        json={"model": "test/claude", **body},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        timeout=10,
    )


def _stream_chunks(harness: Harness, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The JSON chunks of a raw streamed answer (which must end with [DONE])."""
    with httpx.stream(
        "POST",
        harness.base_url + "/chat/completions",
        json={"model": "test/claude", "stream": True, **body},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        timeout=10,
    ) as response:
        assert response.status_code == 200
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    return [json.loads(line[6:]) for line in lines[:-1]]


TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                "required": ["city"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_time",
            "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}},
        },
    },
]


# -- plain text and conversations ----------------------------------------------------------


def test_the_builtin_registry_serves_the_anthropic_kind() -> None:
    assert "anthropic" in builtin_registry().kinds()


def test_plain_text(sdk: openai.OpenAI, fake: FakeAnthropic) -> None:
    completion = sdk.chat.completions.create(model="test/claude", messages=_user("hello there"))
    body = fake.last_request
    assert body["model"] == "claude-test"
    assert body["max_tokens"] == 4096  # required upstream: the endpoint's max output
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "hello there"}]}
    ]
    assert not {"temperature", "top_p", "top_k", "stream", "system"} & set(body)
    choice = completion.choices[0]
    assert choice.message.content == "Echo: hello there"
    assert (choice.finish_reason, _extra(choice)["native_finish_reason"]) == (
        "stop",
        "end_turn",
    )
    assert _extra(completion)["provider"] == "fake-anthropic"
    upstream = fake.usages[-1]
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == upstream["input_tokens"]
    assert completion.usage.completion_tokens == upstream["output_tokens"]


def test_streamed_text(sdk: openai.OpenAI, fake: FakeAnthropic) -> None:
    stream = sdk.chat.completions.create(
        model="test/claude",
        messages=_user("one two three"),
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert fake.last_request["stream"] is True
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Echo: one two three"
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) > 1
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finishes == ["stop"]
    usage = chunks[-1].usage
    assert usage is not None and not chunks[-1].choices
    assert usage.prompt_tokens == fake.usages[-1]["input_tokens"]
    assert usage.completion_tokens == fake.usages[-1]["output_tokens"]


def test_system_and_developer_messages_become_the_system_field(
    sdk: openai.OpenAI, fake: FakeAnthropic
) -> None:
    sdk.chat.completions.create(
        model="test/claude",
        messages=[
            {"role": "system", "content": "Be terse."},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in English."}]},
            {"role": "user", "content": "hi"},
        ],
    )
    body = fake.last_request
    assert body["system"] == [
        {"type": "text", "text": "Be terse."},
        {"type": "text", "text": "Answer in English."},
    ]
    assert [m["role"] for m in body["messages"]] == ["user"]


def test_consecutive_turns_of_one_role_are_merged(sdk: openai.OpenAI, fake: FakeAnthropic) -> None:
    completion = sdk.chat.completions.create(
        model="test/claude",
        messages=[
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "noted"},
            {"role": "user", "content": "second"},
            {"role": "user", "content": "third"},
        ],
    )
    messages = fake.last_request["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert [b["text"] for b in messages[2]["content"]] == ["second", "third"]
    assert completion.choices[0].message.content == "Echo: second third"


def test_a_trailing_assistant_message_is_a_prefill(sdk: openai.OpenAI, fake: FakeAnthropic) -> None:
    completion = sdk.chat.completions.create(
        model="test/claude",
        messages=[
            {"role": "user", "content": "Count to three"},
            {"role": "assistant", "content": "One, two, three "},
        ],
    )
    # Anthropic refuses a prefill that ends in whitespace.
    assert fake.last_request["messages"][-1] == {
        "role": "assistant",
        "content": [{"type": "text", "text": "One, two, three"}],
    }
    assert completion.choices[0].message.content == " and so on."


def test_images_and_pdfs_reach_the_upstream_as_blocks(
    sdk: openai.OpenAI, fake: FakeAnthropic
) -> None:
    sdk.chat.completions.create(
        model="test/claude",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Compare these"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                    {
                        "type": "file",
                        "file": {
                            "filename": "a.pdf",
                            "file_data": "data:application/pdf;base64,JVBERi0=",
                        },
                    },
                ],
            }
        ],
    )
    blocks = fake.last_request["messages"][0]["content"]
    assert blocks[1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": PNG},
    }
    assert blocks[2] == {
        "type": "image",
        "source": {"type": "url", "url": "https://example.com/cat.jpg"},
    }
    assert blocks[3] == {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
        "title": "a.pdf",
    }


def test_an_image_type_anthropic_cannot_read_is_a_400(
    harness: Harness, fake: FakeAnthropic
) -> None:
    sent = len(fake.requests)
    response = _post(
        harness,
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "what is this"},
                        {"type": "image_url", "image_url": {"url": "data:image/bmp;base64,Qk0="}},
                    ],
                }
            ]
        },
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "messages[0].content[1].image_url.url"
    assert len(fake.requests) == sent


# -- sampling parameters and stops ---------------------------------------------------------


def test_temperature_is_clamped_and_unknown_parameters_are_dropped(
    sdk: openai.OpenAI, fake: FakeAnthropic
) -> None:
    sdk.chat.completions.create(
        model="test/claude",
        messages=_user("hi"),
        temperature=1.7,
        top_p=0.9,
        seed=7,
        frequency_penalty=0.5,
        user="user-42",
        extra_body={"top_k": 5, "min_p": 0.1},
    )
    body = fake.last_request
    assert body["temperature"] == 1.0
    assert (body["top_p"], body["top_k"]) == (0.9, 5)
    assert body["metadata"] == {"user_id": "user-42"}
    assert not {"seed", "frequency_penalty", "min_p", "user"} & set(body)


def test_stop_sequences(sdk: openai.OpenAI, fake: FakeAnthropic) -> None:
    completion = sdk.chat.completions.create(
        model="test/claude", messages=_user("one two three four"), stop=["three", "\n"]
    )
    # Anthropic refuses whitespace-only stop sequences, so "\n" is not sent.
    assert fake.last_request["stop_sequences"] == ["three"]
    choice = completion.choices[0]
    assert choice.message.content == "Echo: one two "
    assert (choice.finish_reason, _extra(choice)["native_finish_reason"]) == (
        "stop",
        "stop_sequence",
    )


def test_max_tokens_is_passed_and_its_stop_is_length(
    sdk: openai.OpenAI, fake: FakeAnthropic
) -> None:
    completion = sdk.chat.completions.create(
        model="test/claude", messages=_user("one two three four"), max_completion_tokens=3
    )
    assert fake.last_request["max_tokens"] == 3
    choice = completion.choices[0]
    assert choice.message.content == "Echo: one two"
    assert (choice.finish_reason, _extra(choice)["native_finish_reason"]) == (
        "length",
        "max_tokens",
    )


# -- tools ---------------------------------------------------------------------------------


def test_required_tool_choice_answers_with_tool_calls(
    sdk: openai.OpenAI, fake: FakeAnthropic
) -> None:
    completion = sdk.chat.completions.create(
        model="test/claude",
        messages=_user("weather in Paris?"),
        tools=TOOLS,
        tool_choice="required",
    )
    body = fake.last_request
    assert body["tool_choice"] == {"type": "any"}
    assert body["tools"][0] == {
        "name": "get_weather",
        "description": "Weather for a city",
        "input_schema": TOOLS[0]["function"]["parameters"],
    }
    choice = completion.choices[0]
    assert (choice.finish_reason, _extra(choice)["native_finish_reason"]) == (
        "tool_calls",
        "tool_use",
    )
    assert choice.message.content is None
    calls = choice.message.tool_calls or []
    assert len(calls) == 1 and calls[0].id.startswith("toolu_")
    assert calls[0].function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(calls[0].function.arguments) == {"city": "sample", "days": 1}  # type: ignore[union-attr]


def test_a_named_tool_choice_streams_tool_call_deltas(
    sdk: openai.OpenAI, fake: FakeAnthropic
) -> None:
    stream = sdk.chat.completions.create(
        model="test/claude",
        messages=_user("what time is it?"),
        tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_time"}},
        parallel_tool_calls=False,
        stream=True,
    )
    chunks = list(stream)
    assert fake.last_request["tool_choice"] == {
        "type": "tool",
        "name": "get_time",
        "disable_parallel_tool_use": True,
    }
    deltas = [call for c in chunks if c.choices for call in (c.choices[0].delta.tool_calls or [])]
    assert len(deltas) > 2  # the start, then the arguments piece by piece
    assert {d.index for d in deltas} == {0}
    assert deltas[0].id and deltas[0].function and deltas[0].function.name == "get_time"
    arguments = "".join(d.function.arguments or "" for d in deltas if d.function)
    assert json.loads(arguments) == {"zone": "sample"}
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert [f for f in finishes if f] == ["tool_calls"]


@pytest.mark.parametrize("text_first", [False, True])
def test_a_tool_result_round_trip(
    sdk: openai.OpenAI, fake: FakeAnthropic, text_first: bool
) -> None:
    call: dict[str, Any] = {
        "id": "call.1:x",  # another upstream's id style: not Anthropic's
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    }
    result = {"role": "tool", "tool_call_id": "call.1:x", "content": "21 degrees"}
    note = {"role": "user", "content": "in Celsius"}
    messages: list[Any] = [
        {"role": "user", "content": "weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        *([note, result] if text_first else [result, note]),
    ]
    completion = sdk.chat.completions.create(model="test/claude", messages=messages, tools=TOOLS)
    sent = fake.last_request["messages"]
    assert sent[1] == {
        "role": "assistant",
        "content": [
            {
                "type": "tool_use",
                "id": "call_1_x",
                "name": "get_weather",
                "input": {"city": "Paris"},
            }
        ],
    }
    # One user turn answers the call; its tool_result must come first.
    assert sent[2] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "call_1_x", "content": "21 degrees"},
            {"type": "text", "text": "in Celsius"},
        ],
    }
    assert completion.choices[0].message.content == "Tool said: 21 degrees in Celsius"


def test_tool_call_arguments_that_are_not_json_are_a_400(harness: Harness) -> None:
    response = _post(
        harness,
        {
            "messages": [
                {"role": "user", "content": "hi"},
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "get_time", "arguments": "{oops"},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "c1", "content": "noon"},
            ],
            "tools": TOOLS,
        },
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "messages[1].tool_calls[0].function.arguments"


# -- reasoning -----------------------------------------------------------------------------


def test_reasoning_effort_becomes_thinking(sdk: openai.OpenAI, fake: FakeAnthropic) -> None:
    completion = sdk.chat.completions.create(
        model="test/claude",
        messages=_user("why is the sky blue"),
        temperature=0.3,
        extra_body={"reasoning": {"effort": "high"}},
    )
    body = fake.last_request
    # "high" asks for 16384 tokens, more than max_tokens allows: half of it is used.
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert body["max_tokens"] == 4096
    assert "temperature" not in body  # only the default is allowed with thinking
    message = completion.choices[0].message
    assert _extra(message)["reasoning"] == "The user wrote 5 words."
    assert message.content == "Echo: why is the sky blue"


def test_reasoning_streams_as_reasoning_deltas(sdk: openai.OpenAI, fake: FakeAnthropic) -> None:
    stream = sdk.chat.completions.create(
        model="test/claude",
        messages=_user("think about it"),
        max_tokens=3000,
        stream=True,
        extra_body={"reasoning": {"max_tokens": 1500}},
    )
    chunks = list(stream)
    assert fake.last_request["thinking"] == {"type": "enabled", "budget_tokens": 1500}
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    reasoning = [_extra(d).get("reasoning") for d in deltas]
    assert len([r for r in reasoning if r]) == 2
    assert "".join(r for r in reasoning if r) == "The user wrote 3 words."
    assert "".join(d.content or "" for d in deltas) == "Echo: think about it"


def test_extended_thinking_with_the_reasoning_excluded(
    sdk: openai.OpenAI, fake: FakeAnthropic
) -> None:
    completion = sdk.chat.completions.create(
        model="test/claude",
        messages=_user("quietly now"),
        max_tokens=3000,
        extra_body={
            "extended_thinking": {
                "enabled": True,
                "budget_tokens": 1200,
                "include_reasoning": False,
            }
        },
    )
    assert fake.last_request["thinking"] == {"type": "enabled", "budget_tokens": 1200}
    assert "reasoning" not in _extra(completion.choices[0].message)
    assert completion.choices[0].message.content == "Echo: quietly now"


def test_thinking_gives_way_to_a_forced_tool_choice(
    sdk: openai.OpenAI, fake: FakeAnthropic
) -> None:
    completion = sdk.chat.completions.create(
        model="test/claude",
        messages=_user("weather?"),
        tools=TOOLS,
        tool_choice="required",
        extra_body={"reasoning": {"effort": "low"}},
    )
    assert "thinking" not in fake.last_request  # Anthropic refuses both together
    assert completion.choices[0].finish_reason == "tool_calls"


# -- prompt caching ------------------------------------------------------------------------


def test_cache_control_passes_through_and_cache_usage_is_reported(
    sdk: openai.OpenAI, fake: FakeAnthropic
) -> None:
    system = f"You are a careful assistant. Run {time.time_ns()}. " + "Rules. " * 200
    messages: list[Any] = [
        {
            "role": "system",
            "content": [{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}],
        },
        {"role": "user", "content": "hello"},
    ]
    tools: list[Any] = [{**TOOLS[1], "cache_control": {"type": "ephemeral", "ttl": "1h"}}]
    first = sdk.chat.completions.create(model="test/claude", messages=messages, tools=tools)
    body = fake.last_request
    assert body["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert body["tools"][0]["cache_control"] == {"type": "ephemeral", "ttl": "1h"}
    written = fake.usages[-1]["cache_creation_input_tokens"]
    assert written > 0
    usage = first.usage
    assert usage is not None and usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 0
    assert usage.prompt_tokens_details.cache_write_tokens == written
    assert usage.prompt_tokens == fake.usages[-1]["input_tokens"] + written

    stream = sdk.chat.completions.create(
        model="test/claude",
        messages=messages,
        tools=tools,
        stream=True,
        stream_options={"include_usage": True},
    )
    again = [c for c in stream if c.usage][-1].usage
    assert again is not None and again.prompt_tokens_details is not None
    assert again.prompt_tokens_details.cached_tokens == written
    assert again.prompt_tokens_details.cache_write_tokens == 0
    assert again.prompt_tokens == fake.usages[-1]["input_tokens"] + written


# -- errors and fallback -------------------------------------------------------------------


def test_an_upstream_rejection_is_a_400_and_is_not_retried(
    harness: Harness, fake: FakeAnthropic
) -> None:
    sent = len(fake.requests)
    response = _post(
        harness,
        {
            "model": "test/claude-pair",
            # A tool result that answers no tool call: Anthropic's 400.
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "tool", "tool_call_id": "call_nowhere", "content": "42"},
            ],
        },
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert "unexpected `tool_use_id`" in error["message"]
    assert len(fake.requests) == sent + 1  # the second endpoint would refuse it as well


def test_an_upstream_that_refuses_our_key_is_a_502(harness: Harness) -> None:
    response = _post(harness, {"model": "test/claude-badkey", "messages": _user("hi")})
    assert response.status_code == 502
    assert "invalid x-api-key" in response.json()["error"]["message"]


def test_an_error_event_after_the_first_token_is_the_error_chunk(harness: Harness) -> None:
    chunks = _stream_chunks(harness, {"messages": _user("go [error-midway]")})
    assert chunks[0]["choices"][0]["delta"]["content"] == "Echo:"
    error_chunk = chunks[-1]
    assert error_chunk["error"]["code"] == 502
    assert error_chunk["error"]["metadata"]["error_type"] == "upstream_error"
    assert "Overloaded" in error_chunk["error"]["message"]
    assert error_chunk["choices"][0]["finish_reason"] == "error"


def test_a_stream_that_stops_without_message_stop_is_an_error(harness: Harness) -> None:
    chunks = _stream_chunks(harness, {"messages": _user("go [cut-midway]")})
    assert chunks[0]["choices"][0]["delta"]["content"] == "Echo:"
    assert "message_stop" in chunks[-1]["error"]["message"]
    assert chunks[-1]["choices"][0]["finish_reason"] == "error"


@pytest.mark.parametrize("stream", [False, True])
def test_an_overloaded_endpoint_falls_back_to_the_next(
    sdk: openai.OpenAI, fake: FakeAnthropic, stream: bool
) -> None:
    sent = len(fake.requests)
    order = {"provider": {"order": ["fake-anthropic", "fake-anthropic-backup"]}}
    if stream:
        chunks = list(
            sdk.chat.completions.create(
                model="test/claude-fallback", messages=_user("hi"), stream=True, extra_body=order
            )
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        provider = _extra(chunks[0])["provider"]
    else:
        completion = sdk.chat.completions.create(
            model="test/claude-fallback", messages=_user("hi"), extra_body=order
        )
        text, provider = (
            completion.choices[0].message.content or "",
            _extra(completion)["provider"],
        )
    assert [r["model"] for r in fake.requests[sent:]] == ["overloaded-claude", "claude-test"]
    assert (text, provider) == ("Echo: hi", "fake-anthropic-backup")


def test_overloaded_without_fallback_is_a_502(harness: Harness) -> None:
    response = _post(
        harness,
        {
            "model": "test/claude-fallback",
            "messages": _user("hi"),
            "provider": {"order": ["fake-anthropic"], "allow_fallbacks": False},
        },
    )
    assert response.status_code == 502
    assert "Overloaded" in response.json()["error"]["message"]


def test_a_client_that_goes_away_closes_the_upstream_stream(
    harness: Harness, fake: FakeAnthropic
) -> None:
    aborted = fake.aborted_streams
    words = " ".join(f"w{i}" for i in range(200))
    with httpx.stream(
        "POST",
        harness.base_url + "/chat/completions",
        json={"model": "test/claude", "stream": True, "messages": _user(f"[long] {words}")},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        timeout=10,
    ) as response:
        for line in response.iter_lines():
            if '"content"' in line:
                break
    # 200 words at 50 ms each would take 10 s; the upstream must see the close long before.
    deadline = time.monotonic() + 5
    while fake.aborted_streams == aborted:
        assert time.monotonic() < deadline, "the upstream stream was not closed"
        time.sleep(0.05)


async def test_closing_the_event_stream_early_closes_the_upstream_connection(
    fake: FakeAnthropic, tmp_path: Path
) -> None:
    provider_spec = ProviderSpec(
        id="fake-anthropic", kind="anthropic", base_url=fake.base_url, api_key_env=KEY_ENV
    )
    model = ModelSpec(
        id="test/claude",
        name="Test",
        max_output=100,
        endpoints=[EndpointSpec(provider="fake-anthropic", upstream_model="claude-test")],
    )
    catalog = build_catalog([provider_spec], [model])
    provider = AnthropicProvider(ProviderContext(catalog, tmp_path))
    await provider.start()
    try:
        words = " ".join(f"w{i}" for i in range(200))
        body = {"model": "test/claude", "messages": _user(f"[long] {words}"), "stream": True}
        events = provider.stream(
            parse_chat_request(json.dumps(body).encode()),
            catalog.models["test/claude"].endpoints[0],
        )
        aborted = fake.aborted_streams
        first = await anext(events)
        assert isinstance(first, Delta) and first.content == "Echo:"
        await events.aclose()  # while suspended at a yield, not awaiting the network
        deadline = time.monotonic() + 5
        while fake.aborted_streams == aborted:
            assert time.monotonic() < deadline, "the upstream connection was left open"
            await asyncio.sleep(0.05)
    finally:
        await provider.close()


# -- the fake refuses what Anthropic refuses -----------------------------------------------

VALID: dict[str, Any] = {
    "model": "claude-test",
    "max_tokens": 100,
    "messages": [{"role": "user", "content": "hi"}],
}
HEADERS = {"x-api-key": API_KEY, "anthropic-version": "2023-06-01"}
TOOL = {"name": "t", "input_schema": {"type": "object"}}
USED = {
    "role": "assistant",
    "content": [{"type": "tool_use", "id": "tu1", "name": "t", "input": {}}],
}


@pytest.mark.parametrize(
    ("change", "headers", "status", "message"),
    [
        ({}, {"x-api-key": ""}, 401, "invalid x-api-key"),
        ({}, {"x-api-key": "sk-ant-other"}, 401, "invalid x-api-key"),
        ({}, {"anthropic-version": ""}, 400, "anthropic-version"),
        ({"max_tokens": None}, {}, 400, "max_tokens: Field required"),
        ({"seed": 1}, {}, 400, "seed: Extra inputs are not permitted"),
        ({"temperature": 1.5}, {}, 400, "temperature: Input should be less than or equal to 1"),
        ({"stop_sequences": ["\n"]}, {}, 400, "non-whitespace"),
        ({"messages": [{"role": "system", "content": "x"}]}, {}, 400, "messages.0.role"),
        ({"messages": [{"role": "assistant", "content": "x"}]}, {}, 400, "first message"),
        ({"messages": [VALID["messages"][0]] * 2}, {}, 400, "roles must alternate"),
        (
            {
                "messages": [
                    {"role": "user", "content": "a"},
                    {"role": "assistant", "content": "b "},
                ]
            },
            {},
            400,
            "trailing whitespace",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "x"}]}
                ]
            },
            {},
            400,
            "unexpected `tool_use_id`",
        ),
        (
            {"messages": [VALID["messages"][0], USED, VALID["messages"][0]], "tools": [TOOL]},
            {},
            400,
            "without `tool_result` blocks",
        ),
        ({"thinking": {"type": "enabled", "budget_tokens": 2000}}, {}, 400, "max_tokens"),
        (
            {
                "max_tokens": 4000,
                "thinking": {"type": "enabled", "budget_tokens": 2000},
                "temperature": 0.5,
            },
            {},
            400,
            "temperature` may only be set to 1",
        ),
        (
            {
                "max_tokens": 4000,
                "thinking": {"type": "enabled", "budget_tokens": 2000},
                "tools": [TOOL],
                "tool_choice": {"type": "any"},
            },
            {},
            400,
            "forces tool use",
        ),
        ({"tool_choice": {"type": "any"}}, {}, 400, "tool_choice"),
    ],
)
def test_the_fake_refuses_what_anthropic_refuses(
    fake: FakeAnthropic, change: dict[str, Any], headers: dict[str, str], status: int, message: str
) -> None:
    body = {k: v for k, v in {**VALID, **change}.items() if v is not None}
    response = httpx.post(
        fake.base_url + "/v1/messages", json=body, headers={**HEADERS, **headers}, timeout=10
    )
    assert response.status_code == status
    error = response.json()
    assert error["type"] == "error"
    assert error["error"]["type"] == (
        "authentication_error" if status == 401 else "invalid_request_error"
    )
    assert message in error["error"]["message"]


def test_the_fake_answers_a_valid_request(fake: FakeAnthropic) -> None:
    response = httpx.post(fake.base_url + "/v1/messages", json=VALID, headers=HEADERS, timeout=10)
    assert response.status_code == 200
    assert response.json()["content"] == [{"type": "text", "text": "Echo: hi"}]


LONG_SYSTEM = "You are a meticulous travel agent who checks every connection twice. " * 100


def _cost(usage: Any) -> Decimal:
    details = usage.prompt_tokens_details
    cached, written = details.cached_tokens or 0, details.cache_write_tokens or 0
    uncached = usage.prompt_tokens - cached - written
    return (
        uncached * Decimal("1.0")
        + cached * Decimal("0.1")
        + written * Decimal("1.25")
        + usage.completion_tokens * Decimal("5.0")
    ) / 1_000_000


def test_a_long_system_prompt_gets_an_automatic_cache_breakpoint(
    sdk: openai.OpenAI, fake: FakeAnthropic
) -> None:
    messages = [{"role": "system", "content": LONG_SYSTEM}, {"role": "user", "content": "Paris?"}]
    first = sdk.chat.completions.create(model="test/claude-cached", messages=messages)  # type: ignore[arg-type]
    assert fake.last_request["system"][-1]["cache_control"] == {"type": "ephemeral"}
    assert first.usage is not None and first.usage.prompt_tokens_details is not None
    assert (first.usage.prompt_tokens_details.cache_write_tokens or 0) > 0
    second = sdk.chat.completions.create(model="test/claude-cached", messages=messages)  # type: ignore[arg-type]
    usage = second.usage
    assert usage is not None and usage.prompt_tokens_details is not None
    assert (usage.prompt_tokens_details.cached_tokens or 0) > 0
    # Cache reads and writes are priced at their own rates.
    for reply in (first, second):
        assert Decimal(str(_extra(reply.usage)["cost"])) == _cost(reply.usage)


def test_x_prompt_caching_false_adds_no_breakpoints(
    sdk: openai.OpenAI, fake: FakeAnthropic
) -> None:
    messages = [{"role": "system", "content": LONG_SYSTEM}, {"role": "user", "content": "Rome?"}]
    sdk.chat.completions.create(
        model="test/claude-cached",
        messages=messages,  # type: ignore[arg-type]
        extra_headers={"X-Prompt-Caching": "false"},
    )
    assert "cache_control" not in json.dumps(fake.last_request)


def test_a_short_system_prompt_gets_no_breakpoint(sdk: openai.OpenAI, fake: FakeAnthropic) -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Oslo?"}]
    sdk.chat.completions.create(model="test/claude-cached", messages=messages)  # type: ignore[arg-type]
    assert "cache_control" not in json.dumps(fake.last_request)
