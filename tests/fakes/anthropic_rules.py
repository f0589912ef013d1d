"""What the Anthropic Messages API (version 2023-06-01) refuses, per its public reference.

`problem(body)` returns the message of the 400 invalid_request_error Anthropic would send,
or None. Written from the reference, so that a translation bug in the gateway shows up as
the same rejection the real API would give.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any, NoReturn

TOP_LEVEL = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "system",
        "metadata",
        "stop_sequences",
        "stream",
        "temperature",
        "top_p",
        "top_k",
        "tools",
        "tool_choice",
        "thinking",
        "service_tier",
    }
)
BLOCKS = {
    "user": {"text", "image", "document", "tool_result"},
    "assistant": {"text", "tool_use", "thinking", "redacted_thinking"},
}
IMAGE_TYPES = {"image/jpeg", "image/png", "image/gif", "image/webp"}
NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
TOOL_ID = re.compile(r"^[a-zA-Z0-9_-]+$")
MAX_CACHE_BREAKPOINTS = 4


class Rejected(Exception):
    pass


def problem(body: Any) -> str | None:
    try:
        _check(body)
    except Rejected as exc:
        return str(exc)
    return None


def _fail(message: str) -> NoReturn:
    raise Rejected(message)


def _number(body: dict[str, Any], name: str, low: float, high: float) -> None:
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        _fail(f"{name}: Input should be a valid number")
    if value < low:
        _fail(f"{name}: Input should be greater than or equal to {low:g}")
    if value > high:
        _fail(f"{name}: Input should be less than or equal to {high:g}")


def _check(body: Any) -> None:
    if not isinstance(body, dict):
        _fail("body: Input should be a valid dictionary")
    for name in sorted(set(body) - TOP_LEVEL):
        _fail(f"{name}: Extra inputs are not permitted")
    if not isinstance(body.get("model"), str):
        _fail("model: Field required")
    max_tokens = body.get("max_tokens")
    if max_tokens is None:
        _fail("max_tokens: Field required")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        _fail("max_tokens: Input should be greater than or equal to 1")
    _number(body, "temperature", 0, 1)
    _number(body, "top_p", 0, 1)
    top_k = body.get("top_k")
    if top_k is not None and (not isinstance(top_k, int) or top_k < 0):
        _fail("top_k: Input should be greater than or equal to 0")
    for stop in body.get("stop_sequences") or []:
        if not isinstance(stop, str) or not stop.strip():
            _fail("stop_sequences: each stop sequence must contain non-whitespace")
    metadata = body.get("metadata")
    if metadata is not None:
        for key in metadata:
            if key != "user_id":
                _fail(f"metadata.{key}: Extra inputs are not permitted")
    breakpoints = _check_system(body.get("system"))
    tool_names, tool_breakpoints = _check_tools(body.get("tools"))
    breakpoints += tool_breakpoints
    _check_tool_choice(body.get("tool_choice"), tool_names)
    breakpoints += _check_messages(body.get("messages"))
    if breakpoints > MAX_CACHE_BREAKPOINTS:
        _fail(f"A maximum of {MAX_CACHE_BREAKPOINTS} blocks with cache_control may be provided.")
    _check_thinking(body)


def _check_cache_control(block: dict[str, Any], where: str) -> int:
    control = block.get("cache_control")
    if control is None:
        return 0
    if control.get("type") != "ephemeral" or control.get("ttl", "5m") not in ("5m", "1h"):
        _fail(f"{where}.cache_control: Input tag does not match the expected tag 'ephemeral'")
    return 1


def _check_text(block: dict[str, Any], where: str) -> int:
    text = block.get("text")
    if not isinstance(text, str):
        _fail(f"{where}.text: Field required")
    if not text.strip():
        _fail(f"{where}: text content blocks must contain non-whitespace text")
    return _check_cache_control(block, where)


def _check_system(system: Any) -> int:
    if system is None or isinstance(system, str):
        return 0
    if not isinstance(system, list):
        _fail("system: Input should be a valid list")
    count = 0
    for index, block in enumerate(system):
        if block.get("type") != "text":
            _fail(f"system.{index}.type: Input should be 'text'")
        count += _check_text(block, f"system.{index}")
    return count


def _check_tools(tools: Any) -> tuple[set[str], int]:
    names: set[str] = set()
    count = 0
    for index, tool in enumerate(tools or []):
        name = tool.get("name")
        if not isinstance(name, str) or not NAME.match(name):
            _fail(f"tools.{index}.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'")
        schema = tool.get("input_schema")
        if not isinstance(schema, dict) or schema.get("type") != "object":
            _fail(f"tools.{index}.input_schema.type: Input should be 'object'")
        for key in set(tool) - {"name", "description", "input_schema", "cache_control", "type"}:
            _fail(f"tools.{index}.{key}: Extra inputs are not permitted")
        count += _check_cache_control(tool, f"tools.{index}")
        names.add(name)
    return names, count


def _check_tool_choice(choice: Any, names: set[str]) -> None:
    if choice is None:
        return
    kind = choice.get("type")
    if kind not in ("auto", "any", "tool", "none"):
        _fail("tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'")
    if kind in ("any", "tool") and not names:
        _fail("tool_choice: tool_choice may only be specified while providing tools.")
    if kind == "tool" and choice.get("name") not in names:
        _fail(f"tool_choice.name: Tool '{choice.get('name')}' not found in provided tools")


def _check_messages(messages: Any) -> int:
    if not isinstance(messages, list) or not messages:
        _fail("messages: at least one message is required")
    count = 0
    for index, message in enumerate(messages):
        role = message.get("role")
        if role not in BLOCKS:
            _fail(f"messages.{index}.role: Input should be 'user' or 'assistant'")
        if index == 0 and role != "user":
            _fail('messages: first message must use the "user" role')
        if index > 0 and messages[index - 1].get("role") == role:
            _fail(
                'messages: roles must alternate between "user" and "assistant", '
                f'but found multiple "{role}" roles in a row'
            )
        content = message.get("content")
        if isinstance(content, str):
            if not content.strip() and index != len(messages) - 1:
                _fail(f"messages.{index}: text content blocks must be non-empty")
            continue
        if not isinstance(content, list) or not content:
            _fail(f"messages.{index}.content: all messages must have non-empty content")
        previous = messages[index - 1] if index > 0 else {}
        for position, block in enumerate(content):
            where = f"messages.{index}.content.{position}"
            count += _check_block(role, block, where, previous)
            after_other = position > 0 and content[position - 1].get("type") != "tool_result"
            if block.get("type") == "tool_result" and after_other:
                _fail(f"{where}: tool_result blocks must come first in the content")
        if role == "assistant" and index + 1 < len(messages):
            _check_answered(index, content, messages[index + 1])
    last = messages[-1]
    if last.get("role") == "assistant":
        final = last["content"] if isinstance(last["content"], str) else last["content"][-1]
        text = final if isinstance(final, str) else final.get("text", "")
        if text != text.rstrip():
            _fail("messages: final assistant content cannot end with trailing whitespace")
    return count


def _tool_use_ids(message: dict[str, Any]) -> set[str]:
    content = message.get("content")
    if not isinstance(content, list):
        return set()
    return {str(b.get("id")) for b in content if b.get("type") == "tool_use"}


def _check_answered(index: int, content: list[dict[str, Any]], following: dict[str, Any]) -> None:
    asked = {str(b.get("id")) for b in content if b.get("type") == "tool_use"}
    answers = following.get("content")
    answered = (
        {str(b.get("tool_use_id")) for b in answers if b.get("type") == "tool_result"}
        if isinstance(answers, list)
        else set()
    )
    missing = sorted(asked - answered)
    if missing:
        _fail(
            f"messages.{index}: `tool_use` ids were found without `tool_result` blocks "
            f"immediately after: {', '.join(missing)}. Each `tool_use` block must have a "
            "corresponding `tool_result` block in the next message."
        )


def _check_block(role: str, block: dict[str, Any], where: str, previous: dict[str, Any]) -> int:
    kind = block.get("type")
    if kind not in BLOCKS[role]:
        _fail(f"{where}.type: '{kind}' blocks are not allowed in '{role}' messages")
    if kind == "text":
        return _check_text(block, where)
    if kind == "image":
        _check_source(block.get("source") or {}, where)
    elif kind == "tool_use":
        if not TOOL_ID.match(str(block.get("id"))) or not isinstance(block.get("input"), dict):
            _fail(f"{where}: tool_use blocks need an id matching ^[a-zA-Z0-9_-]+$ and an input")
    elif kind == "tool_result":
        tool_use_id = block.get("tool_use_id")
        if tool_use_id not in _tool_use_ids(previous):
            _fail(
                f"{where}: unexpected `tool_use_id` found in `tool_result` blocks: "
                f"{tool_use_id}. Each `tool_result` block must have a corresponding "
                "`tool_use` block in the previous message."
            )
    return _check_cache_control(block, where)


def _check_source(source: dict[str, Any], where: str) -> None:
    kind = source.get("type")
    if kind == "url":
        if not str(source.get("url", "")).startswith(("https://", "http://")):
            _fail(f"{where}.source.url: Input should be a valid URL")
        return
    if kind != "base64":
        _fail(f"{where}.source.type: Input should be 'base64' or 'url'")
    if source.get("media_type") not in IMAGE_TYPES:
        _fail(
            f"{where}.source.media_type: Input should be 'image/jpeg', 'image/png', "
            "'image/gif' or 'image/webp'"
        )
    try:
        base64.b64decode(str(source.get("data")), validate=True)
    except binascii.Error:
        _fail(f"{where}.source.data: The image data is not valid base64")


def _check_thinking(body: dict[str, Any]) -> None:
    thinking = body.get("thinking")
    if thinking is None or thinking.get("type") == "disabled":
        return
    budget = thinking.get("budget_tokens")
    if thinking.get("type") != "enabled" or not isinstance(budget, int):
        _fail("thinking.enabled.budget_tokens: Field required")
    if budget < 1024:
        _fail("thinking.enabled.budget_tokens: Input should be greater than or equal to 1024")
    if budget >= body["max_tokens"]:
        _fail("`max_tokens` must be greater than `thinking.budget_tokens`.")
    if body.get("temperature", 1) != 1:
        _fail("`temperature` may only be set to 1 when thinking is enabled.")
    if "top_k" in body:
        _fail("`top_k` is not supported when thinking is enabled.")
    if body.get("top_p", 1) < 0.95:
        _fail("`top_p` must be greater than or equal to 0.95 when thinking is enabled.")
    if (body.get("tool_choice") or {}).get("type") in ("any", "tool"):
        _fail("Thinking may not be enabled when tool_choice forces tool use.")
    messages = body["messages"]
    if messages[-1]["role"] == "assistant":
        _fail("Prefilling the assistant response is not supported when thinking is enabled.")
    last_assistant = next((m for m in reversed(messages) if m["role"] == "assistant"), None)
    if last_assistant is not None and _tool_use_ids(last_assistant):
        first = last_assistant["content"][0].get("type")
        if first not in ("thinking", "redacted_thinking"):
            _fail(
                f"Expected `thinking` or `redacted_thinking`, but found `{first}`. When "
                "`thinking` is enabled, a final `assistant` message must start with a "
                "thinking block."
            )
