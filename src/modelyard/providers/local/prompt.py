"""Render a chat request as the prompt text a local GGUF model expects.

A GGUF that carries a chat template is rendered with it (Jinja, as llama.cpp does).
Base models such as Gemma 3 270M carry none, so the endpoint's `chat_format` names a turn
format from `TURN_FORMATS`. Tools and structured-output instructions become system text.
Tools are written the way SmolLM2's and Qwen's templates expect: signatures inside
`<tools></tools>`, calls as `<tool_call>{"name": ..., "arguments": ...}</tool_call>`, results
as user turns wrapped in `<tool_response></tool_response>` (small local models have no tool role).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from modelyard.schema.chat import (
    AssistantMessage,
    ChatRequest,
    Content,
    JsonObjectFormat,
    JsonSchemaFormat,
    Message,
    TextPart,
    ToolMessage,
)


@dataclass(frozen=True, slots=True)
class Turn:
    role: str  # system | user | assistant
    text: str


@dataclass(frozen=True, slots=True)
class RenderedPrompt:
    text: str
    # True when the last turn is an assistant prefill the model continues.
    prefilled: bool


def request_turns(request: ChatRequest) -> list[Turn]:
    """Flatten messages, tools and output instructions into plain system/user/assistant turns."""
    system: list[str] = []
    turns: list[Turn] = []
    for message in request.messages:
        _append_message(message, system, turns)
    instructions = _output_instructions(request)
    if instructions:
        system.append(instructions)
    if system:
        turns.insert(0, Turn("system", "\n\n".join(system)))
    return turns


def _append_message(message: Message, system: list[str], turns: list[Turn]) -> None:
    if isinstance(message, AssistantMessage):
        parts = [content_text(message.content)] if message.content is not None else []
        for call in message.tool_calls or ():
            arguments = call.function.arguments or "{}"
            body = f'{{"name": {json.dumps(call.function.name)}, "arguments": {arguments}}}'
            parts.append(f"<tool_call>\n{body}\n</tool_call>")
        turns.append(Turn("assistant", "\n".join(p for p in parts if p)))
    elif isinstance(message, ToolMessage):
        text = content_text(message.content)
        response = f"<tool_response>\n{text}\n</tool_response>"
        # Consecutive results of one turn's calls share a user turn, as the templates do.
        if turns and turns[-1].role == "user" and turns[-1].text.startswith("<tool_response>"):
            response = f"{turns[-1].text.removesuffix(ANSWER_FROM_RESULTS)}\n{response}"
            turns.pop()
        # Without this line SmolLM2 135M repeats the call it just made instead of answering.
        turns.append(Turn("user", response + ANSWER_FROM_RESULTS))
    else:
        role = type(message).__struct_config__.tag
        text = content_text(message.content)
        if role in ("system", "developer") and not turns:
            system.append(text)
        else:
            turns.append(Turn("system" if role == "developer" else str(role), text))


def content_text(content: Content | None) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "\n".join(part.text for part in content if isinstance(part, TextPart))


def _output_instructions(request: ChatRequest) -> str:
    lines: list[str] = []
    if request.tools and request.tool_choice != "none":
        lines.append(tools_text(request))
    fmt = request.response_format
    if isinstance(fmt, JsonSchemaFormat):
        schema = json.dumps(fmt.json_schema.schema or {"type": "object"})
        lines.append(f"Reply with only a JSON object that matches this JSON Schema: {schema}")
    elif isinstance(fmt, JsonObjectFormat):
        lines.append("Reply with only a JSON object.")
    return "\n".join(lines)


ANSWER_FROM_RESULTS = "\nUsing this result, answer my question in plain text, without a tool call."
TOOLS_HEADER = (
    "# Tools\n\nYou may call one of these functions to answer the user.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>"
)
TOOLS_FOOTER = (
    "</tools>\n\nWhen the user's request needs one of these functions, reply with only the "
    "call: a JSON object with the function name and arguments within <tool_call></tool_call> "
    'XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n'
    "</tool_call>\nOtherwise answer in plain text."
)


def tools_text(request: ChatRequest) -> str:
    """The system text that lists the request's tools and how to call them."""
    lines = [TOOLS_HEADER]
    for tool in request.tools or ():
        fn = tool.function
        spec: dict[str, Any] = {"name": fn.name, "description": fn.description or ""}
        spec["parameters"] = fn.parameters or {"type": "object", "properties": {}}
        lines.append(json.dumps({"type": "function", "function": spec}))
    lines.append(TOOLS_FOOTER)
    return "\n".join(lines)


def _render_gemma(turns: Sequence[Turn]) -> RenderedPrompt:
    # Gemma has no system role: the system text opens the first user turn.
    out: list[str] = []
    pending_system = ""
    prefilled = bool(turns) and turns[-1].role == "assistant"
    for index, turn in enumerate(turns):
        if turn.role == "system":
            pending_system += turn.text + "\n\n"
            continue
        role = "model" if turn.role == "assistant" else "user"
        text = turn.text
        if role == "user" and pending_system:
            text, pending_system = pending_system + text, ""
        out.append(f"<start_of_turn>{role}\n{text}")
        if not (prefilled and index == len(turns) - 1):
            out.append("<end_of_turn>\n")
    if pending_system:
        out.append(f"<start_of_turn>user\n{pending_system.rstrip()}<end_of_turn>\n")
    if not prefilled:
        out.append("<start_of_turn>model\n")
    return RenderedPrompt("".join(out), prefilled)


TurnFormat = Callable[[Sequence[Turn]], RenderedPrompt]
TURN_FORMATS: dict[str, TurnFormat] = {"gemma": _render_gemma}


class TemplateFormat:
    """A chat template read from the GGUF's metadata."""

    def __init__(self, template: str, bos_token: str, eos_token: str) -> None:
        self._formatter = Jinja2ChatFormatter(
            template=template, bos_token=bos_token, eos_token=eos_token
        )

    def __call__(self, turns: Sequence[Turn]) -> RenderedPrompt:
        prefilled = bool(turns) and turns[-1].role == "assistant"
        messages = [{"role": t.role, "content": t.text} for t in turns]
        result = self._formatter(messages=cast(Any, messages))
        text = result.prompt
        if prefilled:
            # Drop what the template adds after the prefill so the model continues it.
            end = text.rfind(turns[-1].text)
            if end >= 0:
                text = text[: end + len(turns[-1].text)]
        return RenderedPrompt(text, prefilled)
