"""Chat Completions request → Anthropic Messages request body.

Anthropic differs from OpenAI in ways a client should not have to know about: system text
is a top-level field, turns must alternate user/assistant, tool results are user content,
`max_tokens` is required, temperature is 0–1, and extended thinking excludes some sampling
parameters. Everything here follows the Messages API reference (version 2023-06-01);
parameters the endpoint does not list in `supported_parameters` are not sent.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

from modelyard.catalog import Endpoint
from modelyard.errors import InvalidRequest
from modelyard.providers.anthropic_caching import add_cache_breakpoints
from modelyard.providers.base import output_tokens
from modelyard.schema.chat import (
    AssistantMessage,
    CacheControl,
    ChatRequest,
    Content,
    DeveloperMessage,
    FilePart,
    ImagePart,
    NamedToolChoice,
    SystemMessage,
    TextPart,
    Tool,
    ToolMessage,
    UserMessage,
)

Block = dict[str, Any]

IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
MIN_THINKING_BUDGET = 1024
EFFORT_BUDGETS = {"minimal": 1024, "low": 1024, "medium": 4096, "high": 16384}
DEFAULT_THINKING_BUDGET = EFFORT_BUDGETS["medium"]
MAX_USER_ID = 256
_TOOL_ID_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")


@dataclass(frozen=True, slots=True)
class AnthropicCall:
    body: dict[str, Any]
    show_reasoning: bool  # thinking blocks go back to the client as `reasoning`


def translate_request(request: ChatRequest, endpoint: Endpoint, *, stream: bool) -> AnthropicCall:
    supported = endpoint.supported_parameters
    system, turns = _conversation(request)
    max_tokens = output_tokens(request, endpoint)
    body: dict[str, Any] = {
        "model": endpoint.upstream_model,
        "max_tokens": max_tokens,
        "messages": turns,
    }
    if system:
        body["system"] = system
    if stream:
        body["stream"] = True

    budget, show_reasoning = _thinking_budget(request) if "reasoning" in supported else (None, True)
    if budget is not None:
        budget = _fit_budget(budget, max_tokens, turns, request)
    if budget is not None:
        body["thinking"] = {"type": "enabled", "budget_tokens": budget}
        # With thinking, temperature may only be 1 (the default) and top_k is not allowed;
        # top_p must lie in 0.95–1.
        if request.top_p is not None and "top_p" in supported:
            body["top_p"] = max(request.top_p, 0.95)
    else:
        if request.temperature is not None and "temperature" in supported:
            body["temperature"] = min(request.temperature, 1.0)  # OpenAI's 0–2 → 0–1
        if request.top_p is not None and "top_p" in supported:
            body["top_p"] = request.top_p
        if request.top_k and "top_k" in supported:  # 0 means "off" in OpenAI terms
            body["top_k"] = request.top_k

    # Anthropic refuses whitespace-only stop sequences (OpenAI clients often send "\n").
    stops = [s for s in request.stop_sequences if s.strip()]
    if stops and "stop" in supported:
        body["stop_sequences"] = stops
    if request.tools and "tools" in supported:
        body["tools"] = [_tool(tool) for tool in request.tools]
        choice = _tool_choice(request) if "tool_choice" in supported else None
        if choice is not None:
            body["tool_choice"] = choice
    if request.user and len(request.user) <= MAX_USER_ID:
        body["metadata"] = {"user_id": request.user}
    if request.prompt_caching:
        add_cache_breakpoints(body, endpoint.model.prompt_cache_min_tokens)
    return AnthropicCall(body, show_reasoning if budget is not None else True)


# -- messages ------------------------------------------------------------------------------


def _conversation(request: ChatRequest) -> tuple[list[Block], list[Block]]:
    """The top-level `system` blocks, and the turns with same-role neighbours merged."""
    system: list[Block] = []
    turns: list[Block] = []
    for index, message in enumerate(request.messages):
        where = f"messages[{index}]"
        if isinstance(message, SystemMessage | DeveloperMessage):
            system += _text_blocks(message.content)
            continue
        if isinstance(message, UserMessage):
            role, blocks = "user", _user_blocks(message.content, where)
        elif isinstance(message, ToolMessage):
            role, blocks = "user", [_tool_result(message)]
        else:
            role, blocks = "assistant", _assistant_blocks(message, where)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:
        if turn["role"] == "user":
            # tool_result blocks must open the user turn that answers the tool calls.
            turn["content"].sort(key=lambda block: block["type"] != "tool_result")
    if turns and turns[-1]["role"] == "assistant":
        _trim_prefill(turns)
    return system, turns


def _trim_prefill(turns: list[Block]) -> None:
    """A trailing assistant turn is a prefill, which may not end in whitespace."""
    blocks: list[Block] = turns[-1]["content"]
    last = blocks[-1]
    if last["type"] == "text":
        last["text"] = last["text"].rstrip()
        if not last["text"]:
            blocks.pop()
    if not blocks:
        turns.pop()


def _text_block(text: str, cache_control: CacheControl | None = None) -> Block:
    block: Block = {"type": "text", "text": text}
    if cache_control is not None:
        block["cache_control"] = _cache_control(cache_control)
    return block


def _cache_control(cache_control: CacheControl) -> Block:
    out: Block = {"type": cache_control.type}
    if cache_control.ttl is not None:
        out["ttl"] = cache_control.ttl
    return out


def _text_blocks(content: Content | None) -> list[Block]:
    """Text blocks of text-only content; Anthropic rejects empty text blocks, so none are."""
    if content is None:
        return []
    if isinstance(content, str):
        return [_text_block(content)] if content.strip() else []
    return [
        _text_block(part.text, part.cache_control)
        for part in content
        if isinstance(part, TextPart) and part.text.strip()
    ]


def _user_blocks(content: Content, where: str) -> list[Block]:
    if isinstance(content, str):
        return _text_blocks(content)
    blocks: list[Block] = []
    for index, part in enumerate(content):
        param = f"{where}.content[{index}]"
        if isinstance(part, TextPart):
            blocks += _text_blocks([part])
        elif isinstance(part, ImagePart):
            blocks.append(_image_block(part.image_url.url, f"{param}.image_url.url"))
        else:
            blocks.append(_document_block(part, f"{param}.file"))
    return blocks


def _image_block(url: str, param: str) -> Block:
    if not url.startswith("data:"):
        return {"type": "image", "source": {"type": "url", "url": url}}
    header, _, data = url.partition(",")
    media_type = header.removeprefix("data:").split(";")[0].lower()
    media_type = "image/jpeg" if media_type == "image/jpg" else media_type
    if media_type not in IMAGE_TYPES:
        raise InvalidRequest(
            f"'{param}': images must be JPEG, PNG, GIF or WebP for this model, "
            f"not {media_type or 'an unnamed type'}.",
            param=param,
        )
    source = {"type": "base64", "media_type": media_type, "data": data}
    return {"type": "image", "source": source}


def _document_block(part: FilePart, param: str) -> Block:
    """PDF or plain-text files, given inline as a data: URL, become document blocks."""
    data_url = part.file.file_data or ""
    header, _, data = data_url.partition(",")
    media_type = header.removeprefix("data:").split(";")[0].lower()
    if not data_url.startswith("data:") or ";base64" not in header:
        raise InvalidRequest(
            f"'{param}.file_data' must be a base64 data: URL for this model "
            "(file ids are not supported).",
            param=f"{param}.file_data",
        )
    source: Block
    if media_type == "application/pdf":
        source = {"type": "base64", "media_type": media_type, "data": data}
    elif media_type == "text/plain":
        try:
            text = base64.b64decode(data, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise InvalidRequest(
                f"'{param}.file_data' is not base64-encoded UTF-8 text.",
                param=f"{param}.file_data",
            ) from exc
        source = {"type": "text", "media_type": media_type, "data": text}
    else:
        raise InvalidRequest(
            f"'{param}.file_data': this model reads PDF and plain-text files, "
            f"not {media_type or 'an unnamed type'}.",
            param=f"{param}.file_data",
        )
    block: Block = {"type": "document", "source": source}
    if part.file.filename:
        block["title"] = part.file.filename
    return block


def _assistant_blocks(message: AssistantMessage, where: str) -> list[Block]:
    # `reasoning` from an earlier turn cannot be sent back: Anthropic needs its signature.
    blocks = _text_blocks(message.content)
    for index, call in enumerate(message.tool_calls or ()):
        param = f"{where}.tool_calls[{index}].function.arguments"
        blocks.append(
            {
                "type": "tool_use",
                "id": _tool_id(call.id),
                "name": call.function.name,
                "input": _arguments(call.function.arguments, param),
            }
        )
    return blocks


def _arguments(arguments: str, param: str) -> dict[str, Any]:
    if not arguments.strip():
        return {}
    try:
        value = json.loads(arguments)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"'{param}' is not valid JSON: {exc.msg}.", param=param) from exc
    if not isinstance(value, dict):
        raise InvalidRequest(f"'{param}' must be a JSON object.", param=param)
    return value


def _tool_id(call_id: str) -> str:
    """Anthropic accepts ids of [a-zA-Z0-9_-] only; other gateways' ids may hold more."""
    return _TOOL_ID_UNSAFE.sub("_", call_id) or "call"


def _tool_result(message: ToolMessage) -> Block:
    block: Block = {"type": "tool_result", "tool_use_id": _tool_id(message.tool_call_id)}
    if isinstance(message.content, str):
        if message.content:
            block["content"] = message.content
    else:
        blocks = _text_blocks(message.content)
        if blocks:
            block["content"] = blocks
    return block


# -- tools and thinking --------------------------------------------------------------------


def _tool(tool: Tool) -> Block:
    function = tool.function
    schema = {"type": "object", **(function.parameters or {"properties": {}})}
    out: Block = {"name": function.name, "input_schema": schema}
    if function.description:
        out["description"] = function.description
    if tool.cache_control is not None:
        out["cache_control"] = _cache_control(tool.cache_control)
    return out


def _tool_choice(request: ChatRequest) -> Block | None:
    choice = request.tool_choice
    if choice == "none":
        return {"type": "none"}
    out: Block
    if choice == "required":
        out = {"type": "any"}
    elif isinstance(choice, NamedToolChoice):
        out = {"type": "tool", "name": choice.function.name}
    elif choice == "auto" or request.parallel_tool_calls is False:
        out = {"type": "auto"}
    else:
        return None
    if request.parallel_tool_calls is False:
        out["disable_parallel_tool_use"] = True
    return out


def _thinking_budget(request: ChatRequest) -> tuple[int | None, bool]:
    """The thinking budget asked for (OpenRouter's `reasoning` or Heroku's
    `extended_thinking`), or None; and whether the client wants to see the reasoning."""
    reasoning = request.reasoning
    if reasoning is not None and reasoning.enabled is not False:
        if reasoning.max_tokens is not None:
            return reasoning.max_tokens, not reasoning.exclude
        if reasoning.effort is not None:
            return EFFORT_BUDGETS[reasoning.effort], not reasoning.exclude
        if reasoning.enabled:
            return DEFAULT_THINKING_BUDGET, not reasoning.exclude
    thinking = request.extended_thinking
    if thinking is not None and thinking.enabled:
        budget = thinking.budget_tokens or DEFAULT_THINKING_BUDGET
        return budget, thinking.include_reasoning is not False
    return None, True


def _fit_budget(
    budget: int, max_tokens: int, turns: list[Block], request: ChatRequest
) -> int | None:
    """The budget Anthropic will take here, or None where thinking cannot be used.

    Thinking tokens count against `max_tokens` and the budget must stay below it: a budget
    that does not fit is cut to half of `max_tokens`, leaving the rest for the answer.
    Anthropic refuses thinking together with a forced tool choice, with a prefill, and
    after a tool call whose signed thinking block we cannot send back; the client's
    explicit request (tool choice, prefill, the tool loop) wins over reasoning there.
    """
    if request.tool_choice == "required" or isinstance(request.tool_choice, NamedToolChoice):
        return None
    last_assistant = next((t for t in reversed(turns) if t["role"] == "assistant"), None)
    if last_assistant is not None and (
        turns[-1] is last_assistant
        or any(block["type"] == "tool_use" for block in last_assistant["content"])
    ):
        return None
    budget = max(budget, MIN_THINKING_BUDGET)
    if budget >= max_tokens:
        budget = max_tokens // 2
    return budget if budget >= MIN_THINKING_BUDGET else None
