"""The Anthropic Messages request: decoding, validation and translation to a ChatRequest."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelyard.catalog.loader import load_catalog
from modelyard.errors import InvalidRequest
from modelyard.providers.anthropic_request import translate_request
from modelyard.schema.chat import (
    AssistantMessage,
    CacheControl,
    FileData,
    FilePart,
    FunctionCall,
    FunctionDef,
    ImagePart,
    ImageUrl,
    NamedFunction,
    NamedToolChoice,
    ProviderPreferences,
    Reasoning,
    SystemMessage,
    TextPart,
    Tool,
    ToolCall,
    ToolMessage,
    UserMessage,
)
from modelyard.schema.messages import MessagesCall, parse_messages_request
from modelyard.schema.messages_content import BILLING_BLOCK

EPHEMERAL = {"type": "ephemeral"}
USER = [{"role": "user", "content": "hi"}]
BASH_SCHEMA = {"type": "object", "properties": {"command": {"type": "string"}}}
READ_SCHEMA = {
    "type": "object",
    "properties": {"file_path": {"type": "string"}, "limit": {"type": "number"}},
    "required": ["file_path"],
    "additionalProperties": False,
    "$schema": "http://json-schema.org/draft-07/schema#",
}
# The shape Claude Code sends: system blocks with cache_control, many tools, thinking,
# metadata, and fields this gateway does not act on (context_management, ...).
CLAUDE_CODE = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 32000,
    "stream": True,
    "system": [
        {"type": "text", "text": "You are Claude Code.", "cache_control": EPHEMERAL},
        {
            "type": "text",
            "text": "Be concise.",
            "cache_control": {"type": "ephemeral", "ttl": "1h"},
        },
    ],
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "<system-reminder>ctx</system-reminder>"},
                {"type": "text", "text": "read setup.py", "cache_control": EPHEMERAL},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Let me read it.", "signature": "EqQBCkYI"},
                {"type": "text", "text": "Reading."},
                {
                    "type": "tool_use",
                    "id": "toolu_01",
                    "name": "Read",
                    "input": {"file_path": "/src/setup.py"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_01",
                    "content": [{"type": "text", "text": "from setuptools import setup"}],
                },
                {"type": "text", "text": "now explain", "cache_control": EPHEMERAL},
            ],
        },
    ],
    "tools": [
        {"name": "Read", "description": "Reads a file", "input_schema": READ_SCHEMA},
        {
            "name": "Bash",
            "description": "Runs a command",
            "input_schema": BASH_SCHEMA,
            "cache_control": EPHEMERAL,
        },
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 5},
    ],
    "tool_choice": {"type": "auto"},
    "thinking": {"type": "enabled", "budget_tokens": 31999},
    "metadata": {"user_id": "user_abc_account_def_session_ghi"},
    "temperature": 1,
    "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
    "output_config": {"effort": "high"},
}


def encode(value: Any) -> bytes:
    return json.dumps(value).encode()


def parse(**fields: Any) -> MessagesCall:
    return parse_messages_request(
        encode({"model": "m", "max_tokens": 64, "messages": USER, **fields})
    )


def turns(*content: Any, role: str = "user") -> list[dict[str, Any]]:
    return [{"role": role, "content": list(content)}]


def test_claude_code_request_translates() -> None:
    call = parse_messages_request(encode(CLAUDE_CODE))
    chat = call.chat
    assert call.stream is True and chat.stream is True
    assert call.native == CLAUDE_CODE
    assert chat.model == "claude-sonnet-4-5"
    assert chat.max_tokens == 32000
    assert chat.temperature == 1
    assert chat.user == "user_abc_account_def_session_ghi"
    assert chat.reasoning == Reasoning(max_tokens=31999)
    assert chat.messages == [
        SystemMessage(
            content=[
                TextPart("You are Claude Code.", CacheControl()),
                TextPart("Be concise.", CacheControl(ttl="1h")),
            ]
        ),
        UserMessage(
            content=[
                TextPart("<system-reminder>ctx</system-reminder>"),
                TextPart("read setup.py", CacheControl()),
            ]
        ),
        AssistantMessage(
            content=[TextPart("Reading.")],
            tool_calls=[
                ToolCall("toolu_01", FunctionCall("Read", '{"file_path":"/src/setup.py"}'))
            ],
            reasoning="Let me read it.",
        ),
        ToolMessage(content=[TextPart("from setuptools import setup")], tool_call_id="toolu_01"),
        UserMessage(content=[TextPart("now explain", CacheControl())]),
    ]
    # The server tool (web_search) is Anthropic's to run: not among the functions.
    assert chat.tools == [
        Tool(FunctionDef("Read", "Reads a file", READ_SCHEMA)),
        Tool(FunctionDef("Bash", "Runs a command", BASH_SCHEMA), cache_control=CacheControl()),
    ]
    assert chat.tool_choice == "auto"
    assert chat.parallel_tool_calls is None
    assert chat.sent_parameters() == {
        "temperature",
        "max_tokens",
        "tools",
        "tool_choice",
        "reasoning",
    }


FIXTURES = Path(__file__).parent.parent / "fixtures" / "claude_code"


@pytest.mark.parametrize("name", ["messages_request.json", "messages_request_claude_id.json"])
def test_captured_claude_code_requests_translate(name: str) -> None:
    raw = (FIXTURES / name).read_bytes()
    sent = json.loads(raw)
    call = parse_messages_request(raw)
    assert call.native == sent
    chat = call.chat
    # The top-level system blocks come first; a "system" turn stays where it was.
    roles = [type(m).__name__ for m in chat.messages]
    turns = [
        {"user": "UserMessage", "system": "SystemMessage"}[m["role"]] for m in sent["messages"]
    ]
    assert roles == ["SystemMessage", *turns]
    system = chat.messages[0]
    assert isinstance(system, SystemMessage) and isinstance(system.content, list)
    # Claude Code's billing block changes with every prompt; other upstreams never see it.
    assert [p.text for p in system.content] == [
        b["text"] for b in sent["system"] if not b["text"].startswith(BILLING_BLOCK)
    ]
    assert len(system.content) == len(sent["system"]) - 1
    assert chat.tools is not None
    assert [t.function.name for t in chat.tools] == [t["name"] for t in sent["tools"]]
    assert chat.max_tokens == sent["max_tokens"] and chat.stream is True
    assert chat.user == sent["metadata"]["user_id"]
    budget = sent["thinking"].get("budget_tokens")
    expected = Reasoning(max_tokens=budget) if budget else Reasoning(enabled=True)
    assert chat.reasoning == expected


def test_system_turns_in_the_conversation() -> None:
    messages = [
        *USER,
        {"role": "system", "content": "mid-way instructions"},
        {
            "role": "system",
            "content": [{"type": "text", "text": "more", "cache_control": EPHEMERAL}],
        },
    ]
    assert parse(messages=messages).chat.messages == [
        UserMessage(content="hi"),
        SystemMessage(content="mid-way instructions"),
        SystemMessage(content=[TextPart("more", CacheControl())]),
    ]


def test_translation_is_the_inverse_of_the_anthropic_adapter() -> None:
    """What the Anthropic adapter makes of the translation is the body the client sent."""
    sent = {
        "model": "claude-haiku-4-5",
        "max_tokens": 300,
        "system": [{"type": "text", "text": "be brief", "cache_control": EPHEMERAL}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "weather in Paris?"}]},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "toolu_9", "name": "weather", "input": {"q": 1}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_9", "content": "sunny"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"},
                    },
                    {
                        "type": "document",
                        "source": {
                            "type": "base64",
                            "media_type": "application/pdf",
                            "data": "JVBERi0x",
                        },
                        "title": "report.pdf",
                    },
                    {
                        "type": "document",
                        "source": {"type": "text", "media_type": "text/plain", "data": "notes é"},
                    },
                    {"type": "text", "text": "and this?"},
                ],
            },
        ],
        "stop_sequences": ["END"],
        "temperature": 0.5,
        "top_k": 5,
        "tools": [{"name": "weather", "input_schema": {"type": "object", "properties": {}}}],
        "tool_choice": {"type": "tool", "name": "weather", "disable_parallel_tool_use": True},
        "metadata": {"user_id": "u1"},
    }
    chat = parse_messages_request(encode(sent)).chat
    catalog = load_catalog()
    endpoint = next(
        e for m in catalog.models.values() for e in m.endpoints if e.provider.kind == "anthropic"
    )
    again = translate_request(
        msgspec.structs.replace(chat, prompt_caching=False), endpoint, stream=False
    ).body
    assert again == {**sent, "model": endpoint.upstream_model}


def test_string_system_and_content() -> None:
    chat = parse(system="be brief", messages=[{"role": "user", "content": "hello"}]).chat
    assert chat.messages == [SystemMessage(content="be brief"), UserMessage(content="hello")]
    assert chat.stream is False
    assert chat.sent_parameters() == {"max_tokens"}


def test_roles_need_not_alternate_nor_start_with_the_user() -> None:
    messages = [
        {"role": "assistant", "content": "Earlier I said"},
        {"role": "user", "content": "a"},
        {"role": "user", "content": "b"},
        {"role": "assistant", "content": "The answer is"},
    ]
    chat = parse(messages=messages).chat
    assert chat.messages == [
        AssistantMessage(content="Earlier I said"),
        UserMessage(content="a"),
        UserMessage(content="b"),
        AssistantMessage(content="The answer is"),
    ]


def test_empty_final_assistant_turn_is_dropped() -> None:
    chat = parse(messages=[*USER, {"role": "assistant", "content": []}]).chat
    assert chat.messages == [UserMessage(content="hi")]


def test_image_sources() -> None:
    messages = turns(
        {"type": "image", "source": {"type": "base64", "media_type": "image/webp", "data": "UklG"}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
        {"type": "image", "source": {"type": "file", "file_id": "file_01"}},
    )
    assert parse(messages=messages).chat.messages == [
        UserMessage(
            content=[
                ImagePart(ImageUrl("data:image/webp;base64,UklG")),
                ImagePart(ImageUrl("https://example.com/a.png")),
                FilePart(FileData(file_id="file_01")),
            ]
        )
    ]


def test_document_sources() -> None:
    messages = turns(
        {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}},
        {"type": "document", "source": {"type": "file", "file_id": "file_02"}, "title": "b.pdf"},
        {"type": "document", "source": {"type": "content", "content": "inline words"}},
        {
            "type": "document",
            "source": {
                "type": "content",
                "content": [
                    {"type": "text", "text": "page 1"},
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/p"}},
                ],
            },
        },
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "ü"}},
    )
    utf8 = base64.b64encode("ü".encode()).decode()
    assert parse(messages=messages).chat.messages == [
        UserMessage(
            content=[
                FilePart(FileData(file_data="https://example.com/a.pdf")),
                FilePart(FileData("b.pdf", file_id="file_02")),
                TextPart("inline words"),
                TextPart("page 1"),
                ImagePart(ImageUrl("https://example.com/p")),
                FilePart(FileData(file_data=f"data:text/plain;base64,{utf8}")),
            ]
        )
    ]


def test_tool_results_become_tool_messages_before_the_rest_of_the_turn() -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA"}}
    messages = turns(
        {"type": "text", "text": "results:"},
        {"type": "tool_result", "tool_use_id": "a", "content": "1", "is_error": True},
        {"type": "tool_result", "tool_use_id": "b"},
        {
            "type": "tool_result",
            "tool_use_id": "c",
            "content": [
                {"type": "text", "text": "screenshot"},
                image,
                {"type": "tool_reference", "tool_name": "Read"},
                {
                    "type": "search_result",
                    "source": "https://example.com",
                    "title": "t",
                    "content": [{"type": "text", "text": "found"}],
                },
            ],
        },
        {"type": "tool_result", "tool_use_id": "d", "content": [image]},
    )
    assert parse(messages=messages).chat.messages == [
        ToolMessage(content="1", tool_call_id="a"),
        ToolMessage(content="", tool_call_id="b"),
        ToolMessage(content=[TextPart("screenshot"), TextPart("found")], tool_call_id="c"),
        ToolMessage(content="", tool_call_id="d"),
        # Tool messages hold text only: the results' images follow in the user message.
        UserMessage(
            content=[
                TextPart("results:"),
                ImagePart(ImageUrl("data:image/png;base64,AA")),
                ImagePart(ImageUrl("data:image/png;base64,AA")),
            ]
        ),
    ]


def test_anthropic_only_history_is_left_out() -> None:
    messages = [
        *USER,
        {
            "role": "assistant",
            "content": [
                {"type": "redacted_thinking", "data": "EmwKAhgB"},
                {
                    "type": "server_tool_use",
                    "id": "srvtoolu_1",
                    "name": "web_search",
                    "input": {"query": "x"},
                },
                {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
                {"type": "text", "text": "Found it."},
            ],
        },
        {"role": "user", "content": [{"type": "container_upload", "file_id": "f"}]},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "only this"}]},
        {"role": "user", "content": "thanks"},
    ]
    assert parse(messages=messages).chat.messages == [
        UserMessage(content="hi"),
        AssistantMessage(content=[TextPart("Found it.")]),
        UserMessage(content="thanks"),
    ]


def test_tool_use_input_keeps_every_number() -> None:
    messages = [
        *USER,
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "t", "name": "f", "input": {"n": 10**30, "é": [1.5]}}
            ],
        },
    ]
    message = parse(messages=messages).chat.messages[1]
    assert isinstance(message, AssistantMessage) and message.tool_calls
    assert json.loads(message.tool_calls[0].function.arguments) == {"n": 10**30, "é": [1.5]}


@pytest.mark.parametrize(
    ("thinking", "reasoning"),
    [
        ({"type": "enabled", "budget_tokens": 2048}, Reasoning(max_tokens=2048)),
        ({"type": "adaptive"}, Reasoning(enabled=True)),
        ({"type": "between_tools"}, Reasoning(enabled=True)),
        ({"type": "disabled"}, None),
    ],
)
def test_thinking(thinking: dict[str, Any], reasoning: Reasoning | None) -> None:
    assert parse(thinking=thinking).chat.reasoning == reasoning


TOOLS = [{"name": "f", "input_schema": {"type": "object"}}]
SERVER_TOOLS = [{"type": "web_search_20250305", "name": "web_search"}]


@pytest.mark.parametrize(
    ("tools", "choice", "expected", "parallel"),
    [
        (TOOLS, {"type": "auto"}, "auto", None),
        (TOOLS, {"type": "any", "disable_parallel_tool_use": True}, "required", False),
        (TOOLS, {"type": "tool", "name": "f"}, NamedToolChoice(NamedFunction("f")), None),
        (TOOLS, {"type": "none"}, "none", None),
        (TOOLS, {"type": "auto", "disable_parallel_tool_use": False}, "auto", None),
        # Only Anthropic's own tools could meet these: left to an Anthropic upstream.
        (SERVER_TOOLS, {"type": "any"}, None, None),
        (SERVER_TOOLS, {"type": "tool", "name": "web_search"}, None, None),
        (SERVER_TOOLS, {"type": "auto", "disable_parallel_tool_use": True}, None, None),
        (None, {"type": "auto"}, None, None),
    ],
)
def test_tool_choice(
    tools: list[dict[str, Any]] | None, choice: dict[str, Any], expected: Any, parallel: Any
) -> None:
    chat = parse(tools=tools, tool_choice=choice).chat
    assert chat.tool_choice == expected
    assert chat.parallel_tool_calls is parallel


def test_tool_names_as_long_as_anthropic_allows() -> None:
    name = "mcp__" + "x" * 123
    chat = parse(tools=[{"name": name, "input_schema": {"type": "object"}}]).chat
    assert chat.tools and chat.tools[0].function.name == name


def test_custom_tool_type_and_strict() -> None:
    tools = [{"type": "custom", "name": "g", "input_schema": {"type": "object"}, "strict": True}]
    chat = parse(tools=tools).chat
    assert chat.tools == [Tool(FunctionDef("g", None, {"type": "object"}, True))]


def test_openrouter_extensions_and_ignored_fields() -> None:
    call = parse(
        models=["a", "b"],
        provider={"order": ["anthropic"], "allow_fallbacks": False},
        session_id="s1",
        service_tier="standard_only",
        top_p=0.9,
        stop_sequences=["\n\nHuman:"],
        container="c",
        mcp_servers=[{"type": "url", "url": "https://x"}],
    )
    chat = call.chat
    assert chat.model_names() == ["m", "a", "b"]
    assert chat.provider == ProviderPreferences(order=["anthropic"], allow_fallbacks=False)
    assert chat.session_id == "s1"
    assert chat.top_p == 0.9
    assert chat.stop == ["\n\nHuman:"]
    assert call.native["mcp_servers"] == [{"type": "url", "url": "https://x"}]


def test_count_tokens_needs_no_max_tokens() -> None:
    body = encode({"model": "m", "messages": USER})
    call = parse_messages_request(body, count_tokens=True)
    assert call.chat.max_tokens is None
    with pytest.raises(InvalidRequest) as caught:
        parse_messages_request(body)
    assert caught.value.message == "max_tokens: Field required"
    assert caught.value.param == "max_tokens"


PNG = {"type": "base64", "media_type": "image/png", "data": "AA"}
IMAGE = {"type": "image", "source": PNG}


@pytest.mark.parametrize(
    ("fields", "param", "message"),
    [
        ({"model": None}, "model", "Expected `str`"),
        ({"max_tokens": 0}, "max_tokens", ">= 1"),
        ({"max_tokens": "9"}, "max_tokens", "Expected `int | null`, got `str`"),
        ({"messages": []}, "messages", "length >= 1"),
        ({"messages": "hi"}, "messages", "Expected `array`"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages.0.role", "Invalid enum"),
        (
            {"messages": turns(IMAGE, role="system")},
            "messages.0.content.0.type",
            "a system message cannot hold 'image' blocks",
        ),
        ({"messages": [{"role": "system", "content": []}]}, "messages.0", "non-empty content"),
        ({"messages": [{"role": "user"}]}, "messages.0.content", "Field required"),
        ({"messages": [{"role": "user", "content": 3}]}, "messages.0.content", "Expected"),
        ({"messages": [{"role": "user", "content": []}]}, "messages.0", "non-empty content"),
        (
            {"messages": [{"role": "assistant", "content": []}, *USER]},
            "messages.0",
            "non-empty content",
        ),
        ({"messages": turns({"type": "video"})}, "messages.0.content.0.type", "'video'"),
        ({"messages": turns({"text": "x"})}, "messages.0.content.0.type", "Field required"),
        ({"messages": turns({"type": "text"})}, "messages.0.content.0.text", "Field required"),
        (
            {"messages": turns({"type": "tool_result", "content": "x"})},
            "messages.0.content.0.tool_use_id",
            "Field required",
        ),
        (
            {"messages": turns({"type": "tool_result", "tool_use_id": ""})},
            "messages.0.content.0.tool_use_id",
            "length >= 1",
        ),
        (
            {"messages": turns({"type": "tool_use", "id": "a", "name": "f", "input": {}})},
            "messages.0.content.0.type",
            "a user message cannot hold 'tool_use' blocks",
        ),
        (
            {"messages": turns(IMAGE, role="assistant")},
            "messages.0.content.0.type",
            "an assistant message cannot hold 'image' blocks",
        ),
        (
            {"messages": turns({"type": "tool_use", "id": "a", "name": "f"}, role="assistant")},
            "messages.0.content.0.input",
            "Field required",
        ),
        (
            {"messages": turns({**IMAGE, "source": {**PNG, "media_type": "image/bmp"}})},
            "messages.0.content.0.source.media_type",
            "Invalid enum value 'image/bmp'",
        ),
        (
            {"messages": turns({"type": "image", "source": {"type": "url", "url": "ftp://x"}})},
            "messages.0.content.0.source.url",
            "http or https",
        ),
        (
            {
                "messages": turns(
                    {"type": "document", "source": {"type": "url", "url": "file:///etc/passwd"}}
                )
            },
            "messages.0.content.0.source.url",
            "http or https",
        ),
        (
            {
                "messages": turns(
                    {"type": "tool_result", "tool_use_id": "a", "content": [{"type": "tool_use"}]}
                )
            },
            "messages.0.content.0.content.0.type",
            "Invalid value 'tool_use'",
        ),
        (
            {
                "messages": turns(
                    {"type": "text", "text": "x", "cache_control": {"type": "forever"}}
                )
            },
            "messages.0.content.0.cache_control.type",
            "Invalid enum value 'forever'",
        ),
        ({"system": [{"type": "image"}]}, "system.0.type", "Invalid value 'image'"),
        ({"system": 5}, "system", "Expected `str | array | null`, got `int`"),
        ({"temperature": 1.5}, "temperature", "<= 1.0"),
        ({"top_p": -0.1}, "top_p", ">= 0.0"),
        ({"top_k": -1}, "top_k", ">= 0"),
        ({"stop_sequences": "END"}, "stop_sequences", "Expected `array | null`, got `str`"),
        ({"stream": "yes"}, "stream", "Expected `bool`"),
        ({"tools": [{"name": "f"}]}, "tools.0.input_schema", "Field required"),
        ({"tools": [{"input_schema": {"type": "object"}}]}, "tools.0.name", "Field required"),
        (
            {"tools": [{"name": "bad name", "input_schema": {"type": "object"}}]},
            "tools.0.name",
            "Expected `str` matching regex",
        ),
        (
            {"tools": [{"name": "a.b", "input_schema": {"type": "object"}}]},
            "tools.0.name",
            "Expected `str` matching regex",
        ),
        (
            {"tools": [{"name": "x" * 129, "input_schema": {"type": "object"}}]},
            "tools.0.name",
            "Expected `str` matching regex",
        ),
        (
            {"tools": [{"name": "f", "input_schema": {"type": "string"}}]},
            "tools.0.input_schema.type",
            "Input should be 'object'",
        ),
        ({"tools": [*TOOLS, *TOOLS]}, "tools.1.name", "unique"),
        ({"tools": [{"type": 5, "name": "x"}]}, "tools.0.type", "Expected `str`"),
        ({"tools": ["f"]}, "tools.0", "Expected `object`"),
        ({"tool_choice": {"type": "sometimes"}}, "tool_choice.type", "'sometimes'"),
        ({"tool_choice": {"type": "tool"}}, "tool_choice.name", "Field required"),
        (
            {"tools": TOOLS, "tool_choice": {"type": "tool", "name": "g"}},
            "tool_choice.name",
            "no tool named 'g'",
        ),
        ({"tool_choice": {"type": "any"}}, "tool_choice", "needs 'tools'"),
        ({"thinking": {"type": "enabled"}}, "thinking.budget_tokens", "Field required"),
        ({"thinking": {"type": "on"}}, "thinking.type", "'on'"),
        ({"metadata": {"user_id": 7}}, "metadata.user_id", "Expected `str | null`"),
        ({"service_tier": "priority"}, "service_tier", "Invalid enum value 'priority'"),
        ({"models": [""]}, "models.0", "length >= 1"),
        ({"provider": {"sort": "cheapest"}}, "provider.sort", "Invalid enum value 'cheapest'"),
    ],
)
def test_bad_requests_name_the_field(fields: dict[str, Any], param: str, message: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse(**fields)
    assert caught.value.param == param
    assert caught.value.message.startswith(f"{param}: ")
    assert message in caught.value.message


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b"[1]", b'"x"', b"\xff\xfe", b"null", b'{"model": "m", "messages": 1e999}'],
)
def test_bodies_that_are_not_a_json_object(body: bytes) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_messages_request(body)
    assert caught.value.status == 400


def test_deep_nesting_is_refused_before_parsing() -> None:
    deep = "[" * 5000 + "]" * 5000
    body = f'{{"model": "m", "max_tokens": 1, "messages": [], "context_management": {deep}}}'
    with pytest.raises(InvalidRequest) as caught:
        parse_messages_request(body.encode())
    assert caught.value.param == "context_management"


scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
keys = st.sampled_from(
    ["type", "text", "source", "content", "tool_use_id", "id", "name", "input", "data"]
) | st.text(max_size=5)
values = st.recursive(
    scalars
    | st.sampled_from(["text", "image", "tool_result", "tool_use", "thinking", "base64", "url"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=12,
)
turn = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "system"]), "content": values}
)
top_level = st.sampled_from(
    ["system", "tools", "tool_choice", "thinking", "metadata", "stop_sequences", "temperature"]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(turn, max_size=3), st.dictionaries(top_level, values, max_size=3))
def test_random_requests_parse_or_are_invalid(msgs: list[Any], fields: dict[str, Any]) -> None:
    body = encode({"model": "m", "max_tokens": 5, "messages": msgs, **fields})
    try:
        parse_messages_request(body)
    except InvalidRequest as error:
        assert error.status == 400 and error.message
