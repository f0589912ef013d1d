from __future__ import annotations

import json

from modelyard.providers.local.prompt import (
    ANSWER_FROM_RESULTS,
    TURN_FORMATS,
    TemplateFormat,
    Turn,
    request_turns,
)
from modelyard.schema.chat import parse_chat_request


def render(messages: list[dict[str, object]], **extra: object) -> str:
    raw = json.dumps({"model": "m/x", "messages": messages, **extra}).encode()
    return TURN_FORMATS["gemma"](request_turns(parse_chat_request(raw))).text


def test_gemma_turns_put_system_text_into_the_first_user_turn() -> None:
    text = render([{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Hi"}])
    assert text == "<start_of_turn>user\nBe terse.\n\nHi<end_of_turn>\n<start_of_turn>model\n"


def test_multi_turn_and_trailing_assistant_prefill() -> None:
    text = render(
        [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "Name a colour"},
            {"role": "assistant", "content": "The colour is"},
        ]
    )
    assert text.endswith("<start_of_turn>model\nThe colour is")
    assert "<start_of_turn>model\nHello!<end_of_turn>\n" in text


def test_tools_are_described_and_results_become_user_turns() -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    text = render(
        [
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        ],
        tools=tools,
    )
    signature = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
    assert f"<tools>\n{json.dumps(signature)}\n</tools>" in text
    call = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
    assert f"<start_of_turn>model\n{call}<end_of_turn>\n" in text
    result = f"<tool_response>\nsunny\n</tool_response>{ANSWER_FROM_RESULTS}"
    assert f"<start_of_turn>user\n{result}<end_of_turn>" in text


def test_results_of_one_turn_share_a_user_turn_and_none_hides_the_tools() -> None:
    calls = [
        {"id": f"c{i}", "type": "function", "function": {"name": "f", "arguments": "{}"}}
        for i in (1, 2)
    ]
    messages: list[dict[str, object]] = [
        {"role": "user", "content": "Go"},
        {"role": "assistant", "tool_calls": calls},
        {"role": "tool", "tool_call_id": "c1", "content": "one"},
        {"role": "tool", "tool_call_id": "c2", "content": "two"},
    ]
    tools = [{"type": "function", "function": {"name": "f"}}]
    text = render(messages, tools=tools)
    both = "<tool_response>\none\n</tool_response>\n<tool_response>\ntwo\n</tool_response>"
    assert f"<start_of_turn>user\n{both}{ANSWER_FROM_RESULTS}<end_of_turn>" in text
    assert '"parameters": {"type": "object", "properties": {}}' in text
    assert "<tools>" not in render(messages, tools=tools, tool_choice="none")


CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _turns(messages: list[dict[str, object]]) -> list[Turn]:
    raw = json.dumps({"model": "m/x", "messages": messages}).encode()
    return request_turns(parse_chat_request(raw))


def test_a_gguf_chat_template_renders_turns_and_a_generation_prompt() -> None:
    render_template = TemplateFormat(CHATML, bos_token="<s>", eos_token="</s>")
    prompt = render_template(
        _turns([{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"}])
    )
    assert prompt.text == (
        "<|im_start|>system\nBe kind.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert not prompt.prefilled


def test_a_gguf_chat_template_continues_a_prefill() -> None:
    render_template = TemplateFormat(CHATML, bos_token="<s>", eos_token="</s>")
    prompt = render_template(
        _turns([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello th"}])
    )
    assert prompt.text.endswith("<|im_start|>assistant\nHello th")
    assert prompt.prefilled
