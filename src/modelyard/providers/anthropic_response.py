"""Anthropic Messages answers → Completion, and its SSE events → Delta / Finish.

Usage follows OpenAI's convention: `prompt_tokens` counts every input token, cached or not
(Anthropic's `input_tokens` excludes cache reads and writes, so they are added back).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modelyard.catalog.spec import ProviderSpec
from modelyard.errors import UpstreamError
from modelyard.providers.base import (
    Completion,
    Delta,
    Finish,
    StreamEvent,
    ToolCall,
    ToolCallDelta,
    Usage,
    finish_reason_of,
)
from modelyard.providers.http import upstream_error
from modelyard.providers.sse import SseEvent

# The HTTP status Anthropic gives each error type (used for errors sent inside a stream).
ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def usage_of(raw: Mapping[str, Any] | None) -> Usage:
    raw = raw or {}
    fresh, write, read = (
        _count(raw, key)
        for key in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    )
    return Usage(
        prompt_tokens=fresh + write + read,
        completion_tokens=_count(raw, "output_tokens"),
        cached_tokens=read,
        cache_write_tokens=write,
    )


def _count(raw: Mapping[str, Any], key: str) -> int:
    value = raw.get(key)
    return value if isinstance(value, int) else 0


def completion_of(spec: ProviderSpec, body: Any, show_reasoning: bool) -> Completion:
    if not isinstance(body, dict) or not isinstance(body.get("content"), list):
        raise UpstreamError(f"{spec.id} answered with an unexpected body", upstream_status=200)
    text: list[str] = []
    thinking: list[str] = []
    calls: list[ToolCall] = []
    for block in body["content"]:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            text.append(str(block.get("text", "")))
        elif kind == "thinking":
            thinking.append(str(block.get("thinking", "")))
        elif kind == "tool_use":
            arguments = json.dumps(block.get("input") or {}, ensure_ascii=False)
            calls.append(ToolCall(str(block.get("id")), str(block.get("name")), arguments))
        # redacted_thinking and server-tool blocks carry nothing a chat client can use.
    native = str(body.get("stop_reason") or "end_turn")
    content = "".join(text) if text or not calls else None
    reasoning = "".join(thinking) if thinking and show_reasoning else None
    usage = usage_of(body.get("usage"))
    return Completion(content, finish_reason_of(native), native, usage, calls, reasoning)


def stream_error(spec: ProviderSpec, error: Any) -> UpstreamError:
    """An `error` event, classified as the HTTP answer of the same type would be."""
    kind = error.get("type") if isinstance(error, dict) else None
    status = ERROR_STATUS.get(str(kind), 500)
    raw = json.dumps({"type": "error", "error": error}).encode()
    return upstream_error(spec, status, raw, {})


@dataclass(slots=True)
class _ToolBlock:
    index: int  # the OpenAI tool-call index
    sent_arguments: bool = False


class StreamTranslator:
    """Turns one Anthropic event stream into Delta events and one Finish."""

    def __init__(self, spec: ProviderSpec, show_reasoning: bool) -> None:
        self._spec = spec
        self._show_reasoning = show_reasoning
        self._usage: dict[str, Any] = {}  # Anthropic's counts, as last reported
        self._stop_reason = "end_turn"
        self._tools: dict[int, _ToolBlock] = {}  # by Anthropic content-block index
        self._prompt_told = False  # the first Delta carries message_start's prompt counts
        self.finished = False

    def feed(self, event: SseEvent) -> list[StreamEvent]:
        events = self._translate(event)
        if not self._prompt_told and self._usage and events and isinstance(events[0], Delta):
            events[0].prompt_usage = usage_of(self._usage)
            self._prompt_told = True
        return events

    def _translate(self, event: SseEvent) -> list[StreamEvent]:
        if event.event == "ping":
            return []
        try:
            data = json.loads(event.data)
        except json.JSONDecodeError as exc:
            raise UpstreamError(
                f"{self._spec.id} sent an event that is not JSON: {event.data[:200]!r}"
            ) from exc
        if not isinstance(data, dict):
            return []
        kind = data.get("type", event.event)
        if kind == "error":
            raise stream_error(self._spec, data.get("error"))
        if kind == "message_start":
            message = data.get("message") or {}
            self._merge_usage(message.get("usage"))
        elif kind == "content_block_start":
            return self._block_start(data.get("index"), data.get("content_block") or {})
        elif kind == "content_block_delta":
            return self._block_delta(data.get("index"), data.get("delta") or {})
        elif kind == "content_block_stop":
            return self._block_stop(data.get("index"))
        elif kind == "message_delta":
            delta = data.get("delta") or {}
            if delta.get("stop_reason"):
                self._stop_reason = str(delta["stop_reason"])
            # Counts here are cumulative; newer API versions repeat the input counts too.
            self._merge_usage(data.get("usage"))
        elif kind == "message_stop":
            self.finished = True
            native = self._stop_reason
            return [Finish(finish_reason_of(native), native, usage_of(self._usage))]
        return []

    def _merge_usage(self, raw: Any) -> None:
        if isinstance(raw, dict):
            self._usage.update((k, v) for k, v in raw.items() if isinstance(v, int))

    def _block_start(self, index: Any, block: dict[str, Any]) -> list[StreamEvent]:
        kind = block.get("type")
        if kind == "text" and block.get("text"):
            return [Delta(content=str(block["text"]))]
        if kind == "thinking" and block.get("thinking") and self._show_reasoning:
            return [Delta(reasoning=str(block["thinking"]))]
        if kind != "tool_use":
            return []
        tool = _ToolBlock(len(self._tools))
        self._tools[index] = tool
        start = ToolCallDelta(tool.index, str(block.get("id")), str(block.get("name")))
        if block.get("input"):
            start.arguments = json.dumps(block["input"], ensure_ascii=False)
            tool.sent_arguments = True
        return [Delta(tool_calls=[start])]

    def _block_delta(self, index: Any, delta: dict[str, Any]) -> list[StreamEvent]:
        kind = delta.get("type")
        if kind == "text_delta" and delta.get("text"):
            return [Delta(content=str(delta["text"]))]
        if kind == "thinking_delta" and delta.get("thinking") and self._show_reasoning:
            return [Delta(reasoning=str(delta["thinking"]))]
        tool = self._tools.get(index)
        if kind == "input_json_delta" and tool is not None and delta.get("partial_json"):
            tool.sent_arguments = True
            return [Delta(tool_calls=[ToolCallDelta(tool.index, arguments=delta["partial_json"])])]
        return []  # signature_delta, citations, empty pieces

    def _block_stop(self, index: Any) -> list[StreamEvent]:
        tool = self._tools.get(index)
        if tool is None or tool.sent_arguments:
            return []
        # A call without arguments streams no JSON at all; clients expect "{}".
        tool.sent_arguments = True
        return [Delta(tool_calls=[ToolCallDelta(tool.index, arguments="{}")])]
