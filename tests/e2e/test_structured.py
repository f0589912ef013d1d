"""json_schema, json_object and tool calls on the local model always parse and validate."""

from __future__ import annotations

import json

import jsonschema
import openai
import pytest

from tests.e2e.conftest import MODEL

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer"},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["name", "age", "tags"],
    "additionalProperties": False,
}
INVENT = [{"role": "user", "content": "Invent a person with a name, an age and some tags."}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city", "unit"],
        },
    },
}
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {
            "type": "object",
            "properties": {"zone": {"type": "string"}},
            "required": ["zone"],
        },
    },
}
ASK_WEATHER = [{"role": "user", "content": "What is the weather in Paris?"}]


@pytest.mark.parametrize("seed", range(12))
def test_json_schema_output_always_parses_and_validates(client: openai.OpenAI, seed: int) -> None:
    completion = client.chat.completions.create(
        model=MODEL,
        messages=INVENT,  # type: ignore[arg-type]
        max_tokens=80 if seed % 2 else 24,  # short budgets force the closer to finish the JSON
        seed=seed,
        temperature=1.0,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "person", "schema": PERSON, "strict": True},
        },
    )
    content = completion.choices[0].message.content
    assert content is not None
    jsonschema.validate(json.loads(content), PERSON)


def test_json_schema_streaming_assembles_valid_json(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=MODEL,
        messages=INVENT,
        max_tokens=20,
        seed=3,
        stream=True,  # type: ignore[arg-type]
        response_format={"type": "json_schema", "json_schema": {"name": "p", "schema": PERSON}},
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    jsonschema.validate(json.loads(text), PERSON)


@pytest.mark.parametrize("seed", range(4))
def test_json_object_mode_returns_an_object(client: openai.OpenAI, seed: int) -> None:
    completion = client.chat.completions.create(
        model=MODEL,
        messages=INVENT,
        max_tokens=40,
        seed=seed,  # type: ignore[arg-type]
        response_format={"type": "json_object"},
    )
    assert isinstance(json.loads(completion.choices[0].message.content or ""), dict)


@pytest.mark.parametrize("seed", range(4))
def test_required_tool_call_has_valid_arguments(client: openai.OpenAI, seed: int) -> None:
    completion = client.chat.completions.create(
        model=MODEL,
        messages=ASK_WEATHER,
        tools=[WEATHER, TIME],  # type: ignore[list-item,arg-type]
        tool_choice="required",
        max_tokens=60,
        seed=seed,
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = choice.message.tool_calls
    assert calls is not None and len(calls) == 1
    call = calls[0]
    assert call.id.startswith("call_") and call.type == "function"
    schema = {"get_weather": WEATHER, "get_time": TIME}[call.function.name]
    jsonschema.validate(json.loads(call.function.arguments), schema["function"]["parameters"])  # type: ignore[index]


def test_named_tool_choice_forces_that_tool(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model=MODEL,
        messages=ASK_WEATHER,
        tools=[WEATHER, TIME],  # type: ignore[list-item,arg-type]
        tool_choice={"type": "function", "function": {"name": "get_time"}},
        max_tokens=40,
        seed=1,
    )
    calls = completion.choices[0].message.tool_calls
    assert calls is not None and calls[0].function.name == "get_time"
    assert "zone" in json.loads(calls[0].function.arguments)


def test_streamed_tool_call_arrives_as_tool_call_deltas(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=MODEL,
        messages=ASK_WEATHER,
        tools=[WEATHER],  # type: ignore[list-item,arg-type]
        tool_choice="required",
        max_tokens=60,
        seed=2,
        stream=True,
    )
    name, arguments, call_id, finish = "", "", None, None
    for chunk in stream:
        if not chunk.choices:
            continue
        choice = chunk.choices[0]
        for delta in choice.delta.tool_calls or ():
            assert delta.index == 0
            call_id = call_id or delta.id
            if delta.function and delta.function.name:
                name += delta.function.name
            if delta.function and delta.function.arguments:
                arguments += delta.function.arguments
        finish = choice.finish_reason or finish
    assert call_id and name == "get_weather" and finish == "tool_calls"
    jsonschema.validate(json.loads(arguments), WEATHER["function"]["parameters"])  # type: ignore[index]


def test_tool_choice_none_answers_in_text(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model=MODEL,
        messages=ASK_WEATHER,
        tools=[WEATHER],
        tool_choice="none",  # type: ignore[list-item,arg-type]
        max_tokens=10,
        seed=1,
    )
    assert completion.choices[0].message.tool_calls is None
    assert completion.choices[0].message.content
