"""tool_choice "auto" on the embedded SmolLM2, over the wire with the openai SDK (temperature 0)."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import openai

MODEL = "huggingface/smollm2-135m-instruct"
WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "The city, e.g. Paris"}},
            "required": ["city"],
        },
    },
}
STOCK: Any = {
    "type": "function",
    "function": {
        "name": "get_stock_price",
        "description": "Get the latest stock price for a ticker symbol.",
        "parameters": {
            "type": "object",
            "properties": {"ticker": {"type": "string"}},
            "required": ["ticker"],
        },
    },
}
NEEDS_TOOL: Any = [{"role": "user", "content": "What is the weather in Paris right now?"}]
PLAIN: Any = [{"role": "user", "content": "Hello!"}]


def _ask(client: openai.OpenAI, messages: Any, **extra: Any) -> Any:
    return client.chat.completions.create(
        model=MODEL,
        messages=messages,
        tools=[WEATHER, STOCK],
        tool_choice="auto",
        temperature=0,
        max_tokens=40,
        **extra,
    )


def test_auto_calls_the_tool_a_prompt_plainly_needs(client: openai.OpenAI) -> None:
    choice = _ask(client, NEEDS_TOOL).choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.function.name == "get_weather"
    arguments = json.loads(call.function.arguments)
    jsonschema.validate(arguments, WEATHER["function"]["parameters"])
    assert "paris" in arguments["city"].lower()


def test_streamed_auto_makes_the_same_call(client: openai.OpenAI) -> None:
    name, arguments, text, finish = "", "", "", None
    for chunk in _ask(client, NEEDS_TOOL, stream=True):
        if not chunk.choices:
            continue
        choice = chunk.choices[0]
        text += choice.delta.content or ""
        for delta in choice.delta.tool_calls or ():
            name += (delta.function and delta.function.name) or ""
            arguments += (delta.function and delta.function.arguments) or ""
        finish = choice.finish_reason or finish
    assert (name, finish, text) == ("get_weather", "tool_calls", "")
    call = _ask(client, NEEDS_TOOL).choices[0].message.tool_calls[0]
    assert json.loads(arguments) == json.loads(call.function.arguments)


def test_auto_answers_plain_chat_in_text(client: openai.OpenAI) -> None:
    choice = _ask(client, PLAIN).choices[0]
    assert choice.message.tool_calls is None
    assert choice.message.content and not choice.message.content.lstrip().startswith("{")
    streamed = "".join(
        c.choices[0].delta.content or "" for c in _ask(client, PLAIN, stream=True) if c.choices
    )
    assert streamed == choice.message.content


def test_a_full_turn_with_the_tool_result_is_answered_in_text(client: openai.OpenAI) -> None:
    call = _ask(client, NEEDS_TOOL).choices[0].message.tool_calls[0]
    history: Any = [
        *NEEDS_TOOL,
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.function.name, "arguments": call.function.arguments},
                }
            ],
        },
        {
            "role": "tool",
            "tool_call_id": call.id,
            "content": '{"temperature_c": 18, "sky": "sunny"}',
        },
    ]
    choice = _ask(client, history).choices[0]
    assert choice.finish_reason in ("stop", "length") and choice.message.tool_calls is None
    assert choice.message.content
