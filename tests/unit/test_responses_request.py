"""The OpenAI Responses request: decoding, validation and translation to a ChatRequest."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelyard.errors import InvalidRequest
from modelyard.schema.chat import (
    AssistantMessage,
    DeveloperMessage,
    FileData,
    FilePart,
    FunctionCall,
    FunctionDef,
    ImagePart,
    ImageUrl,
    JsonObjectFormat,
    JsonSchemaFormat,
    JsonSchemaSpec,
    NamedFunction,
    NamedToolChoice,
    ProviderPreferences,
    Reasoning,
    SystemMessage,
    TextFormat,
    TextPart,
    Tool,
    ToolCall,
    ToolMessage,
    UserMessage,
)
from modelyard.schema.responses import (
    ResponsesCall,
    function_name,
    parse_responses_request,
    with_history,
)
from modelyard.schema.responses_items import items_to_messages

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    "strict": True,
}
WEATHER_TOOL = Tool(
    FunctionDef(
        "get_weather",
        "The weather in a city",
        {"type": "object", "properties": {"city": {"type": "string"}}},
        True,
    )
)
OTHER_TOOL = Tool(FunctionDef("other"))
FIXTURES = Path(__file__).parent.parent / "fixtures" / "codex"
PNG = "data:image/png;base64,iVBORw0KGgo="
PDF = "data:application/pdf;base64,JVBERi0x"


def parse(**body: Any) -> ResponsesCall:
    return parse_responses_request(json.dumps({"model": "openai/gpt-5", **body}).encode())


def invalid(body: Any) -> InvalidRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    with pytest.raises(InvalidRequest) as caught:
        parse_responses_request(raw)
    return caught.value


def test_a_string_input_is_one_user_message_after_the_instructions() -> None:
    call = parse(input="Hello", instructions="Answer in French.")
    assert call.chat.messages == [
        SystemMessage(content="Answer in French."),
        UserMessage(content="Hello"),
    ]
    assert call.chat.model == "openai/gpt-5"
    assert call.input_items == [{"type": "message", "role": "user", "content": "Hello"}]
    assert call.instructions == "Answer in French."
    assert call.store is True
    assert call.stream is False
    assert call.previous_response_id is None
    assert call.metadata is None
    assert call.body == {
        "model": "openai/gpt-5",
        "input": "Hello",
        "instructions": "Answer in French.",
    }


def test_request_fields_map_to_chat_fields() -> None:
    call = parse(
        input="hi",
        max_output_tokens=300,
        temperature=1.5,
        top_p=0.9,
        top_k=40,
        frequency_penalty=0.5,
        presence_penalty=-0.5,
        user="user-1",
        stream=True,
        store=False,
        metadata={"run": "7"},
        previous_response_id="resp_abc",
        truncation="auto",
        include=["reasoning.encrypted_content"],
        service_tier="auto",
        prompt_cache_key="conversation-9",
        models=["anthropic/claude-haiku-4.5"],
        provider={"order": ["openai"], "allow_fallbacks": False},
        max_tool_calls=3,
        stream_options={"include_obfuscation": False},
        some_future_field={"x": 1},
    )
    chat = call.chat
    assert (chat.max_tokens, chat.temperature, chat.top_p, chat.top_k) == (300, 1.5, 0.9, 40)
    assert (chat.frequency_penalty, chat.presence_penalty) == (0.5, -0.5)
    assert chat.user == "user-1"
    assert chat.stream is True
    assert chat.models == ["anthropic/claude-haiku-4.5"]
    assert chat.provider == ProviderPreferences(order=["openai"], allow_fallbacks=False)
    # The prompt cache key keeps the conversation on the endpoint holding its cache.
    assert chat.session_id == "conversation-9"
    assert (call.stream, call.store, call.metadata) == (True, False, {"run": "7"})
    assert call.previous_response_id == "resp_abc"


def test_session_id_wins_over_prompt_cache_key_and_user_over_safety_identifier() -> None:
    chat = parse(
        input="hi", session_id="s", prompt_cache_key="k", user="u", safety_identifier="safe"
    ).chat
    assert (chat.session_id, chat.user) == ("s", "u")
    assert parse(input="hi", safety_identifier="safe").chat.user == "safe"


def test_message_items_by_role_with_and_without_type() -> None:
    chat = parse(
        input=[
            {"role": "system", "content": "Be brief."},
            {
                "type": "message",
                "role": "developer",
                "content": [{"type": "input_text", "text": "No lists."}],
            },
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is this?"},
                    {"type": "input_image", "image_url": PNG, "detail": "low"},
                    {
                        "type": "input_image",
                        "image_url": "https://example.com/a.png",
                        "detail": "original",
                    },
                    {"type": "input_file", "filename": "a.pdf", "file_data": PDF},
                    {"type": "input_file", "file_url": "https://example.com/b.pdf"},
                ],
            },
            {"role": "assistant", "content": "A cat."},
            {
                "type": "message",
                "id": "msg_1",
                "status": "completed",
                "role": "assistant",
                "content": [
                    {"type": "output_text", "text": "Meow.", "annotations": []},
                    {"type": "refusal", "refusal": "No more."},
                ],
            },
        ]
    ).chat
    assert chat.messages == [
        SystemMessage(content="Be brief."),
        DeveloperMessage(content=[TextPart("No lists.")]),
        UserMessage(
            content=[
                TextPart("What is this?"),
                ImagePart(ImageUrl(PNG, "low")),
                # "original" (no downscaling) is the most detail chat can ask for.
                ImagePart(ImageUrl("https://example.com/a.png", "high")),
                FilePart(FileData("a.pdf", PDF)),
                FilePart(FileData(None, "https://example.com/b.pdf")),
            ]
        ),
        AssistantMessage(content="A cat."),
        AssistantMessage(content=[TextPart("Meow."), TextPart("No more.")]),
    ]


def test_function_calls_join_the_assistant_message_and_outputs_become_tool_messages() -> None:
    call = parse(
        input=[
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {
                "type": "reasoning",
                "id": "rs_1",
                "summary": [{"type": "summary_text", "text": "Two cities."}],
                "content": [{"type": "reasoning_text", "text": "Call the tool twice."}],
            },
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Checking."}],
            },
            {
                "type": "function_call",
                "id": "fc_1",
                "call_id": "call_p",
                "name": "get_weather",
                "arguments": '{"city":"Paris"}',
            },
            {
                "type": "function_call",
                "call_id": "call_r",
                "name": "get_weather",
                "arguments": '{"city":"Rome"}',
                "status": "completed",
            },
            {"type": "function_call_output", "call_id": "call_p", "output": "18C"},
            {
                "type": "function_call_output",
                "call_id": "call_r",
                "output": [
                    {"type": "input_text", "text": "21C, see the map"},
                    {"type": "input_image", "image_url": PNG},
                ],
            },
            {"role": "user", "content": "Thanks"},
        ],
        tools=[WEATHER],
    )
    assert call.chat.messages == [
        UserMessage(content="Weather in Paris and Rome?"),
        AssistantMessage(
            content=[TextPart("Checking.")],
            tool_calls=[
                ToolCall("call_p", FunctionCall("get_weather", '{"city":"Paris"}')),
                ToolCall("call_r", FunctionCall("get_weather", '{"city":"Rome"}')),
            ],
            # The model's own text, not the summary, when both are there.
            reasoning="Call the tool twice.",
        ),
        ToolMessage(content="18C", tool_call_id="call_p"),
        ToolMessage(content=[TextPart("21C, see the map")], tool_call_id="call_r"),
        # Tool messages hold text: the image follows the run of outputs.
        UserMessage(content=[ImagePart(ImageUrl(PNG))]),
        UserMessage(content="Thanks"),
    ]
    assert call.chat.tools == [WEATHER_TOOL]


def test_function_calls_without_a_message_make_their_own_assistant_message() -> None:
    messages = items_to_messages(
        [
            {"role": "user", "content": "go"},
            {"type": "reasoning", "summary": [{"type": "summary_text", "text": "A plan."}]},
            {"type": "function_call", "call_id": "a", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "a", "output": ""},
            {"type": "function_call", "call_id": "b", "name": "f", "arguments": "{}"},
        ]
    )
    assert messages == [
        UserMessage(content="go"),
        AssistantMessage(tool_calls=[ToolCall("a", FunctionCall("f", "{}"))], reasoning="A plan."),
        ToolMessage(content="", tool_call_id="a"),
        # After an output, a call starts a new assistant turn.
        AssistantMessage(tool_calls=[ToolCall("b", FunctionCall("f", "{}"))]),
    ]


def test_an_assistant_turns_items_in_any_order_are_one_message() -> None:
    """Calls must come straight before their outputs in chat: text and reasoning between
    or after them (interleaved thinking; text streamed after calls) stay in their turn."""
    call_a = {"type": "function_call", "call_id": "a", "name": "f", "arguments": "{}"}
    call_b = {"type": "function_call", "call_id": "b", "name": "f", "arguments": "{}"}
    messages = items_to_messages(
        [
            {"role": "assistant", "content": "First."},
            {"type": "reasoning", "summary": [{"type": "summary_text", "text": "then a"}]},
            call_a,
            {"type": "reasoning", "summary": [{"type": "summary_text", "text": ", then b"}]},
            call_b,
            {"role": "assistant", "content": [{"type": "output_text", "text": "Done."}]},
            {"type": "function_call_output", "call_id": "a", "output": "1"},
            {"type": "function_call_output", "call_id": "b", "output": "2"},
        ]
    )
    assert messages == [
        AssistantMessage(
            content=[TextPart("First."), TextPart("Done.")],
            tool_calls=[
                ToolCall("a", FunctionCall("f", "{}")),
                ToolCall("b", FunctionCall("f", "{}")),
            ],
            reasoning="then a, then b",
        ),
        ToolMessage(content="1", tool_call_id="a"),
        ToolMessage(content="2", tool_call_id="b"),
    ]


def test_reasoning_and_empty_assistant_messages_alone_say_nothing() -> None:
    messages = items_to_messages(
        [
            {"type": "reasoning", "summary": [], "encrypted_content": "gAAA"},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": []},
            {"type": "reasoning", "summary": [{"type": "summary_text", "text": "unused"}]},
        ]
    )
    assert messages == [UserMessage(content="hi")]


def test_output_items_of_a_stored_response_rebuild_the_assistant_turn() -> None:
    output: list[dict[str, Any]] = [
        {
            "id": "rs_x_0",
            "type": "reasoning",
            "summary": [],
            "content": [{"type": "reasoning_text", "text": "hm"}],
            "status": "completed",
        },
        {
            "id": "msg_x_1",
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [
                {"type": "output_text", "text": "Let me check.", "annotations": [], "logprobs": []}
            ],
        },
        {
            "id": "fc_x_2",
            "type": "function_call",
            "call_id": "call_1",
            "name": "get_weather",
            "arguments": "{}",
            "status": "completed",
        },
    ]
    assert items_to_messages(output, "output") == [
        AssistantMessage(
            content=[TextPart("Let me check.")],
            tool_calls=[ToolCall("call_1", FunctionCall("get_weather", "{}"))],
            reasoning="hm",
        )
    ]


def test_with_history_puts_the_previous_turns_between_instructions_and_input() -> None:
    call = parse(
        input=[{"type": "function_call_output", "call_id": "call_1", "output": "18C"}],
        instructions="Be brief.",
        previous_response_id="resp_1",
        tools=[WEATHER],
        temperature=0.2,
    )
    history = [
        {"type": "message", "role": "user", "content": "Weather in Paris?"},
        {
            "id": "fc_1",
            "type": "function_call",
            "call_id": "call_1",
            "name": "get_weather",
            "arguments": '{"city":"Paris"}',
            "status": "completed",
        },
    ]
    chat = with_history(call, history)
    assert chat.messages == [
        SystemMessage(content="Be brief."),
        UserMessage(content="Weather in Paris?"),
        AssistantMessage(
            tool_calls=[ToolCall("call_1", FunctionCall("get_weather", '{"city":"Paris"}'))]
        ),
        ToolMessage(content="18C", tool_call_id="call_1"),
    ]
    assert chat == msgspec.structs.replace(call.chat, messages=chat.messages)


def test_previous_response_id_alone_needs_no_input() -> None:
    call = parse(previous_response_id="resp_1", input=[])
    assert call.chat.messages == []
    assert with_history(call, [{"role": "user", "content": "hi"}]).messages == [
        UserMessage(content="hi")
    ]


@pytest.mark.parametrize(
    ("choice", "expected", "tools"),
    [
        ("auto", "auto", [WEATHER_TOOL, OTHER_TOOL]),
        ("none", "none", [WEATHER_TOOL, OTHER_TOOL]),
        ("required", "required", [WEATHER_TOOL, OTHER_TOOL]),
        (
            {"type": "function", "name": "get_weather"},
            NamedToolChoice(NamedFunction("get_weather")),
            [WEATHER_TOOL, OTHER_TOOL],
        ),
        # allowed_tools offers only the tools it names.
        (
            {
                "type": "allowed_tools",
                "mode": "required",
                "tools": [{"type": "function", "name": "get_weather"}],
            },
            "required",
            [WEATHER_TOOL],
        ),
        (
            {
                "type": "allowed_tools",
                "mode": "auto",
                "tools": [{"type": "function", "name": "other"}],
            },
            "auto",
            [OTHER_TOOL],
        ),
    ],
)
def test_tool_choice(choice: Any, expected: Any, tools: list[Tool]) -> None:
    chat = parse(
        input="hi",
        tools=[WEATHER, {"type": "function", "name": "other"}],
        tool_choice=choice,
        parallel_tool_calls=False,
    ).chat
    assert chat.tool_choice == expected
    assert chat.tools == tools
    assert chat.parallel_tool_calls is False


NAMESPACE = {
    "type": "namespace",
    "name": "multi_agent_v1",
    "description": "Agents",
    "tools": [
        {"type": "function", "name": "spawn_agent", "parameters": {"type": "object"}},
        {"type": "custom", "name": "freeform"},
    ],
}


def test_a_namespaces_functions_are_tools_named_with_it() -> None:
    call = parse(input="hi", tools=[WEATHER, NAMESPACE])
    assert call.chat.tools == [
        WEATHER_TOOL,
        Tool(FunctionDef("multi_agent_v1__spawn_agent", None, {"type": "object"})),
    ]
    assert call.namespaced == {"multi_agent_v1__spawn_agent": ("multi_agent_v1", "spawn_agent")}
    assert function_name(call.namespaced, "multi_agent_v1__spawn_agent") == (
        "spawn_agent",
        "multi_agent_v1",
    )
    assert function_name(call.namespaced, "get_weather") == ("get_weather", None)
    # A namespaced call in the input goes by the same name.
    messages = parse(
        input=[
            {
                "type": "function_call",
                "call_id": "c",
                "name": "spawn_agent",
                "namespace": "multi_agent_v1",
                "arguments": "{}",
            },
            {"type": "function_call_output", "call_id": "c", "output": "ok"},
        ],
        tools=[NAMESPACE],
    ).chat.messages
    assert messages[0] == AssistantMessage(
        tool_calls=[ToolCall("c", FunctionCall("multi_agent_v1__spawn_agent", "{}"))]
    )


@pytest.mark.parametrize(
    "hosted",
    [
        {"type": "web_search", "external_web_access": False},
        {"type": "web_search_preview"},
        {"type": "file_search", "vector_store_ids": ["vs_1"]},
        {"type": "mcp", "server_label": "x", "server_url": "https://example.com"},
        {"type": "custom", "name": "apply_patch"},
        {"type": "openrouter:web_search"},
    ],
)
def test_hosted_and_custom_tools_are_left_out(hosted: dict[str, Any]) -> None:
    chat = parse(input="hi", tools=[WEATHER, hosted]).chat
    assert chat.tools == [WEATHER_TOOL]
    alone = parse(input="hi", tools=[hosted], tool_choice="required").chat
    # Only a left-out tool could meet the choice: the model's own, then.
    assert (alone.tools, alone.tool_choice) == (None, None)


def test_a_choice_of_a_hosted_tool_is_the_models_own() -> None:
    chat = parse(
        input="hi", tools=[WEATHER, {"type": "web_search"}], tool_choice={"type": "web_search"}
    ).chat
    assert (chat.tools, chat.tool_choice) == ([WEATHER_TOOL], None)
    allowed = {
        "type": "allowed_tools",
        "mode": "required",
        "tools": [{"type": "web_search"}, {"type": "function", "name": "get_weather"}],
    }
    chat = parse(input="hi", tools=[WEATHER, {"type": "web_search"}], tool_choice=allowed).chat
    assert (chat.tools, chat.tool_choice) == ([WEATHER_TOOL], "required")


def test_hosted_tools_calls_in_the_input_are_left_out() -> None:
    call = parse(
        input=[
            {"role": "user", "content": "news?"},
            {
                "type": "web_search_call",
                "id": "ws_1",
                "status": "completed",
                "action": {"type": "search"},
            },
            {"type": "mcp_list_tools", "id": "ml_1", "server_label": "x", "tools": []},
            {"role": "assistant", "content": "Here."},
        ]
    )
    assert call.chat.messages == [UserMessage(content="news?"), AssistantMessage(content="Here.")]
    assert [item["type"] for item in call.input_items] == [
        "message",
        "web_search_call",
        "mcp_list_tools",
        "message",
    ]


def test_codexs_requests_translate() -> None:
    for name in ("responses_request.json", "responses_request_tool_result.json"):
        raw = (FIXTURES / name).read_bytes()
        call = parse_responses_request(raw)
        names = [tool.function.name for tool in call.chat.tools or ()]
        assert "exec_command" in names and "multi_agent_v1__spawn_agent" in names
        assert all(re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", n) for n in names)
        assert isinstance(call.chat.messages[0], DeveloperMessage)
    last = call.chat.messages[-2:]
    assert isinstance(last[0], AssistantMessage) and last[0].tool_calls
    assert isinstance(last[1], ToolMessage)
    assert last[1].tool_call_id == last[0].tool_calls[0].id


def test_without_tools_auto_and_parallel_calls_are_not_parameters() -> None:
    chat = parse(input="hi", tool_choice="auto", parallel_tool_calls=True, tools=[]).chat
    assert (chat.tools, chat.tool_choice, chat.parallel_tool_calls) == (None, None, None)
    assert not {"tools", "tool_choice", "parallel_tool_calls"} & chat.sent_parameters()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ({"format": {"type": "text"}}, TextFormat()),
        ({"format": {"type": "json_object"}}, JsonObjectFormat()),
        (
            {
                "format": {
                    "type": "json_schema",
                    "name": "city",
                    "schema": {"type": "object"},
                    "strict": True,
                    "description": "A city",
                },
                "verbosity": "low",
            },
            JsonSchemaFormat(JsonSchemaSpec("city", {"type": "object"}, True, "A city")),
        ),
        ({"verbosity": "high"}, None),
    ],
)
def test_text_format_is_the_response_format(text: Any, expected: Any) -> None:
    assert parse(input="hi", text=text).chat.response_format == expected


@pytest.mark.parametrize(
    ("reasoning", "expected"),
    [
        ({"effort": "low", "summary": "auto"}, Reasoning(effort="low")),
        ({"effort": "minimal"}, Reasoning(effort="minimal")),
        ({"effort": "xhigh"}, Reasoning(effort="high")),
        ({"effort": "max"}, Reasoning(effort="high")),
        ({"effort": "none"}, Reasoning(enabled=False)),
        ({"max_tokens": 2048}, Reasoning(max_tokens=2048)),
        ({"enabled": True}, Reasoning(enabled=True)),
        ({"summary": "detailed"}, None),
    ],
)
def test_reasoning(reasoning: Any, expected: Reasoning | None) -> None:
    assert parse(input="hi", reasoning=reasoning).chat.reasoning == expected


@pytest.mark.parametrize(
    ("fields", "logprobs", "top"),
    [
        ({}, None, None),
        ({"include": ["message.output_text.logprobs"]}, True, None),
        ({"include": ["reasoning.encrypted_content"]}, None, None),
        ({"top_logprobs": 5}, True, 5),
        ({"include": ["message.output_text.logprobs"], "top_logprobs": 0}, True, 0),
    ],
)
def test_logprobs_when_include_or_top_logprobs_asks(
    fields: dict[str, Any], logprobs: bool | None, top: int | None
) -> None:
    chat = parse(input="hi", **fields).chat
    assert (chat.logprobs, chat.top_logprobs) == (logprobs, top)


def test_metadata_at_openais_limits_is_taken() -> None:
    metadata = {f"{i:064d}": "v" * 512 for i in range(16)}
    assert parse(input="hi", metadata=metadata).metadata == metadata


BAD: list[tuple[Any, str | None, str]] = [
    (b"{", None, "not valid JSON"),
    (b"[]", None, "must be a JSON object"),
    (b'{"model": "m", "input": "\xff"}', None, "UTF-8"),
    ({"input": "hi"}, "model", "Missing required parameter: 'model'."),
    ({"model": "m"}, "input", "Missing required parameter: 'input'."),
    ({"model": "m", "input": []}, "input", "Missing required parameter: 'input'."),
    ({"model": "m", "input": 3}, "input", "Invalid value for 'input'"),
    ({"model": "m", "input": ["hi"]}, "input[0]", "expected an object"),
    ({"model": "m", "input": "hi", "temperature": 2.5}, "temperature", "<= 2.0"),
    ({"model": "m", "input": "hi", "top_p": -1}, "top_p", ">= 0.0"),
    ({"model": "m", "input": "hi", "max_output_tokens": 0}, "max_output_tokens", ">= 1"),
    ({"model": "m", "input": "hi", "top_logprobs": 21}, "top_logprobs", "<= 20"),
    ({"model": "m", "input": "hi", "stream": "yes"}, "stream", "Expected `bool | null`"),
    ({"model": "m", "input": "hi", "truncation": "middle"}, "truncation", "Invalid value"),
    ({"model": "m", "input": [{"role": "tool", "content": "x"}]}, "input[0].role", "Invalid value"),
    ({"model": "m", "input": [{"role": "user"}]}, "input[0].content", "Missing required parameter"),
    (
        {"model": "m", "input": [{"role": "user", "content": []}]},
        "input[0].content",
        "empty content",
    ),
    (
        {"model": "m", "input": [{"role": "user", "content": [{"type": "input_audio"}]}]},
        "input[0].content[0].type",
        "Invalid value",
    ),
    (
        {
            "model": "m",
            "input": [{"role": "user", "content": [{"type": "output_text", "text": "x"}]}],
        },
        "input[0].content[0].type",
        "a user message cannot hold 'output_text' parts",
    ),
    (
        {
            "model": "m",
            "input": [{"role": "system", "content": [{"type": "input_image", "image_url": PNG}]}],
        },
        "input[0].content[0].type",
        "a system message cannot hold",
    ),
    (
        {
            "model": "m",
            "input": [{"role": "assistant", "content": [{"type": "input_file", "file_data": PDF}]}],
        },
        "input[0].content[0].type",
        "an assistant message cannot hold",
    ),
    (
        {
            "model": "m",
            "input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file-1"}]}],
        },
        "input[0].content[0].file_id",
        "files by id are not supported",
    ),
    (
        {"model": "m", "input": [{"role": "user", "content": [{"type": "input_image"}]}]},
        "input[0].content[0].image_url",
        "Missing required parameter",
    ),
    (
        {
            "model": "m",
            "input": [{"role": "user", "content": [{"type": "input_file", "file_id": "file-1"}]}],
        },
        "input[0].content[0].file_id",
        "files by id are not supported",
    ),
    (
        {
            "model": "m",
            "input": [{"role": "user", "content": [{"type": "input_file", "filename": "a"}]}],
        },
        "input[0].content[0].file_data",
        "Missing required parameter",
    ),
    (
        {
            "model": "m",
            "input": [
                {"role": "user", "content": [{"type": "input_image", "image_url": "ftp://x/y.png"}]}
            ],
        },
        "messages[0].content[0].image_url.url",
        "https URL",
    ),
    (
        {
            "model": "m",
            "input": [
                {"role": "user", "content": "a"},
                {"type": "function_call_output", "output": "x"},
            ],
        },
        "input[1].call_id",
        "Missing required parameter: 'input[1].call_id'.",
    ),
    (
        {"model": "m", "input": [{"type": "function_call", "call_id": "c", "arguments": "{}"}]},
        "input[0].name",
        "Missing required parameter",
    ),
    (
        {
            "model": "m",
            "input": [
                {
                    "type": "function_call",
                    "call_id": "c",
                    "name": "f",
                    "arguments": "[" * 200 + "]" * 200,
                }
            ],
        },
        "input[0].arguments",
        "nests JSON",
    ),
    (
        {
            "model": "m",
            "input": [
                {
                    "type": "function_call_output",
                    "call_id": "c",
                    "output": [{"type": "refusal", "refusal": "x"}],
                }
            ],
        },
        "input[0].output[0].type",
        "Invalid value",
    ),
    ({"model": "m", "input": [{"id": "msg_1"}]}, "input[0]", "item references are not supported"),
    (
        {"model": "m", "input": [{"type": "item_reference", "id": "msg_1"}]},
        "input[0]",
        "item references are not supported",
    ),
    (
        {"model": "m", "input": [{"type": "custom_tool_call", "call_id": "c", "input": "x"}]},
        "input[0].type",
        "'custom_tool_call' items are not supported",
    ),
    ({"model": "m", "input": [{"type": ["message"]}]}, "input[0].type", "expected a string"),
    (
        {"model": "m", "input": [{"content": "x"}]},
        "input[0].type",
        "items without a 'type' are not supported",
    ),
    ({"model": "m", "input": "hi", "tools": [{"type": 1}]}, "tools[0].type", "expected a string"),
    (
        {"model": "m", "input": "hi", "tools": [{"type": "namespace", "tools": []}]},
        "tools[0].name",
        "Missing required parameter",
    ),
    (
        {"model": "m", "input": "hi", "tools": [{"type": "namespace", "name": "n", "tools": [{}]}]},
        "tools[0].tools[0].type",
        "Missing required parameter",
    ),
    (
        {
            "model": "m",
            "input": "hi",
            "tools": [{"type": "namespace", "name": "n" * 60, "tools": [{**WEATHER}]}],
        },
        "tools[0].tools[0].name",
        "more than 64 characters",
    ),
    (
        {
            "model": "m",
            "input": "hi",
            "tools": [
                {"type": "function", "name": "n__f"},
                {"type": "namespace", "name": "n", "tools": [{"type": "function", "name": "f"}]},
            ],
        },
        "tools[1].tools[0].name",
        "Duplicate tool name 'n__f'",
    ),
    (
        {"model": "m", "input": "hi", "tools": [{"name": "f"}]},
        "tools[0].type",
        "Missing required parameter: 'tools[0].type'.",
    ),
    (
        {"model": "m", "input": "hi", "tools": [{"type": "function", "name": "bad name"}]},
        "tools[0].name",
        "Invalid value",
    ),
    (
        {"model": "m", "input": "hi", "tools": [WEATHER, WEATHER]},
        "tools[1].name",
        "Duplicate tool name",
    ),
    (
        {
            "model": "m",
            "input": "hi",
            "tools": [{"type": "function", "name": "f", "parameters": {"type": "array"}}],
        },
        "tools[0].parameters",
        "of type 'object'",
    ),
    (
        {"model": "m", "input": "hi", "tool_choice": "required"},
        "tool_choice",
        "only allowed when 'tools'",
    ),
    (
        {
            "model": "m",
            "input": "hi",
            "tools": [WEATHER],
            "tool_choice": {"type": "function", "name": "nope"},
        },
        "tool_choice.name",
        "not among 'tools'",
    ),
    (
        {
            "model": "m",
            "input": "hi",
            "tools": [WEATHER],
            "tool_choice": {
                "type": "allowed_tools",
                "mode": "auto",
                "tools": [{"type": "function", "name": "nope"}],
            },
        },
        "tool_choice.tools[0].name",
        "not among 'tools'",
    ),
    (
        {
            "model": "m",
            "input": "hi",
            "tools": [WEATHER],
            "tool_choice": {"name": "get_weather"},
        },
        "tool_choice.type",
        "Missing required parameter",
    ),
    (
        {"model": "m", "input": "hi", "tool_choice": {"type": "function"}},
        "tool_choice.name",
        "Missing required parameter",
    ),
    ({"model": "m", "input": "hi", "tool_choice": "sometimes"}, "tool_choice", "Invalid value"),
    (
        {"model": "m", "input": "hi", "text": {"format": {"type": "json_schema", "schema": {}}}},
        "text.format.name",
        "Missing required parameter",
    ),
    (
        {"model": "m", "input": "hi", "text": {"format": {"type": "json_schema", "name": "x"}}},
        "text.format.schema",
        "Missing required parameter",
    ),
    (
        {"model": "m", "input": "hi", "text": {"format": {"type": "yaml"}}},
        "text.format.type",
        "Invalid value",
    ),
    (
        {"model": "m", "input": "hi", "reasoning": {"effort": "extreme"}},
        "reasoning.effort",
        "Invalid value",
    ),
    ({"model": "m", "input": "hi", "metadata": {"k": 1}}, "metadata", "Expected `str`"),
    (
        {"model": "m", "input": "hi", "metadata": {str(i): "v" for i in range(17)}},
        "metadata",
        "at most 16 properties",
    ),
    (
        {"model": "m", "input": "hi", "metadata": {"k" * 65: "v"}},
        "metadata",
        "longer than 64 characters",
    ),
    (
        {"model": "m", "input": "hi", "metadata": {"k": "v" * 513}},
        "metadata.k",
        "at most 512 characters",
    ),
    (
        {"model": "m", "input": "hi", "background": True},
        "background",
        "background responses are not supported",
    ),
    (
        {"model": "m", "input": "hi", "conversation": "conv_1"},
        "conversation",
        "conversations are not supported",
    ),
    (
        {"model": "m", "input": "hi", "prompt": {"id": "pmpt_1"}},
        "prompt",
        "stored prompts are not supported",
    ),
    (
        {"model": "m", "input": "hi", "previous_response_id": ""},
        "previous_response_id",
        "length >= 1",
    ),
    (
        {"model": "m", "input": "hi", "extra": json.loads("[" * 200 + "]" * 200)},
        "extra",
        "nests JSON",
    ),
]


@pytest.mark.parametrize(("body", "param", "message"), BAD)
def test_bad_requests_are_400s_naming_the_field(body: Any, param: str | None, message: str) -> None:
    error = invalid(body)
    assert error.status == 400
    assert error.param == param
    assert message in error.message


def test_items_to_messages_names_the_list_it_reads() -> None:
    with pytest.raises(InvalidRequest) as caught:
        items_to_messages([{"type": "function_call", "name": "f", "arguments": ""}], "output")
    assert caught.value.param == "output[0].call_id"


def test_many_items_in_turns_and_in_one_turn() -> None:
    items: list[dict[str, Any]] = []
    for n in range(5000):
        items.append({"type": "function_call", "call_id": f"c{n}", "name": "f", "arguments": "{}"})
        items.append({"type": "function_call_output", "call_id": f"c{n}", "output": "ok"})
    call = parse(input=[{"role": "user", "content": "go"}, *items])
    assert len(call.chat.messages) == 10_001
    assert len(call.input_items) == 10_001
    # A turn of many calls is built call by call, not copied at each.
    calls = [item for item in items if item["type"] == "function_call"] * 4
    messages = items_to_messages(calls)
    assert len(messages) == 1 and isinstance(messages[0], AssistantMessage)
    assert len(messages[0].tool_calls or ()) == 20_000


scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
keys = st.sampled_from(
    ["type", "role", "content", "text", "call_id", "name", "arguments", "output", "image_url"]
) | st.text(max_size=5)
values = st.recursive(
    scalars
    | st.sampled_from(
        ["message", "function_call", "function_call_output", "reasoning", "input_text", "user"]
    ),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=12,
)
item = st.dictionaries(keys, values, max_size=5)
top_level = st.sampled_from(
    ["instructions", "tools", "tool_choice", "text", "reasoning", "metadata", "temperature"]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(item, max_size=3) | st.text(), st.dictionaries(top_level, values, max_size=3))
def test_random_requests_parse_or_are_invalid(items: Any, fields: dict[str, Any]) -> None:
    body = json.dumps({"model": "m", "input": items, **fields}).encode()
    try:
        parse_responses_request(body)
    except InvalidRequest as error:
        assert error.status == 400 and error.message
