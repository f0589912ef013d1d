"""Answers in Anthropic's Messages shapes: the Message body, its SSE events, and errors.

The inverse of providers/anthropic_response.py. Usage is converted back to Anthropic's
convention, where `input_tokens` excludes the tokens read from or written to the cache.

Errors take Anthropic's type for the status, so each one raises the SDK's matching
exception class (the SDK picks it by status alone), with two choices of ours:
- A failing or overloaded gateway (our own 503s: nothing could serve now, a dependency is
  down) and an upstream that answered 503 or 529 are `overloaded_error` with 529: the one
  answer Anthropic clients treat as "try again later" (OverloadedError; Claude Code retries
  it and may switch to its fallback model). Any other 5xx is `api_error` with 500.
- An upstream that timed out is `timeout_error` with 504, as Anthropic answers; the
  client's own slow request (408) keeps 408, which the SDK also retries.
Other 4xx keep their status with `invalid_request_error`, as Anthropic documents.

JSON is written with msgspec: tool arguments parsed from a model's text may hold integers
beyond 64 bits, which msgspec keeps and orjson does not.
"""

from __future__ import annotations

from typing import Any, Protocol

import msgspec

from modelyard.errors import GatewayError, RequestTimeout, UpstreamError, UpstreamTimeout
from modelyard.providers.anthropic_response import ERROR_STATUS
from modelyard.providers.base import Completion, Delta, ToolCallDelta, Usage

Json = dict[str, Any]

# What Anthropic itself may answer; anything else is mapped from the normalised reason.
ANTHROPIC_STOP_REASONS = frozenset(
    {
        "end_turn",
        "max_tokens",
        "stop_sequence",
        "tool_use",
        "pause_turn",
        "refusal",
        "model_context_window_exceeded",
    }
)
_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
    "error": "end_turn",
}
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
}
_OVERLOADED_UPSTREAM = frozenset({503, 529})
_encode = msgspec.json.encode


def stop_reason_of(
    finish_reason: str, native_finish_reason: str, stop_sequence: str | None = None
) -> str:
    """Anthropic's stop reason; `stop_sequence` is the stop sequence that ended the answer,
    where the provider knows it."""
    if stop_sequence is not None:
        return "stop_sequence"
    if native_finish_reason in ANTHROPIC_STOP_REASONS:
        return native_finish_reason
    return _STOP_REASONS.get(finish_reason, "end_turn")


def usage_body(usage: Usage) -> Json:
    fresh = usage.prompt_tokens - usage.cached_tokens - usage.cache_write_tokens
    return {
        "input_tokens": max(fresh, 0),
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
        "output_tokens": usage.completion_tokens,
    }


def message_body(
    message_id: str,
    model: str,
    completion: Completion,
    usage: Usage,
    *,
    stop_sequence: str | None = None,
) -> bytes:
    content: list[Json] = []
    if completion.reasoning:
        content.append(_thinking_block(completion.reasoning))
    if completion.content or not completion.tool_calls:
        content.append({"type": "text", "text": completion.content or ""})
    for call in completion.tool_calls:
        content.append(_tool_use_block(call.id, call.name, _tool_input(call.arguments)))
    message = _message(message_id, model, content, usage)
    message["stop_reason"] = stop_reason_of(
        completion.finish_reason, completion.native_finish_reason, stop_sequence
    )
    message["stop_sequence"] = stop_sequence
    return _encode(message)


def _message(message_id: str, model: str, content: list[Json], usage: Usage) -> Json:
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": None,
        "stop_sequence": None,
        "usage": usage_body(usage),
    }


def _thinking_block(thinking: str) -> Json:
    # No signature: only Anthropic signs thinking, and it gets its own back unchanged.
    return {"type": "thinking", "thinking": thinking, "signature": ""}


def _tool_use_block(call_id: str, name: str, arguments: Json) -> Json:
    return {"type": "tool_use", "id": call_id, "name": name, "input": arguments}


def _tool_input(arguments: str) -> Json:
    """A model's arguments as the object Anthropic's `input` must be; {} when they are not."""
    try:
        value = msgspec.json.decode(arguments)
    except (msgspec.DecodeError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


# -- errors ---------------------------------------------------------------------------------


def error_type_and_status(error: GatewayError) -> tuple[str, int]:
    if isinstance(error, UpstreamTimeout):
        return "timeout_error", ERROR_STATUS["timeout_error"]
    if isinstance(error, RequestTimeout):
        return "timeout_error", error.status
    if isinstance(error, UpstreamError) and error.status >= 500:
        if error.upstream_status in _OVERLOADED_UPSTREAM:
            return "overloaded_error", ERROR_STATUS["overloaded_error"]
        return "api_error", ERROR_STATUS["api_error"]
    kind = _ERROR_TYPES.get(error.status)
    if kind is not None:
        return kind, ERROR_STATUS[kind]
    if error.status >= 500:
        return "api_error", ERROR_STATUS["api_error"]
    return "invalid_request_error", error.status


def _error_json(error: GatewayError) -> Json:
    kind, _ = error_type_and_status(error)
    return {"type": "error", "error": {"type": kind, "message": error.message}}


def error_body(error: GatewayError) -> bytes:
    return _encode(_error_json(error))


# -- streaming ------------------------------------------------------------------------------


class Ending(Protocol):
    """How an answer ended: a provider's `Finish`, or what the gateway billed for it."""

    @property
    def finish_reason(self) -> str: ...

    @property
    def native_finish_reason(self) -> str: ...

    @property
    def usage(self) -> Usage: ...


def _event(kind: str, data: Json) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + _encode(data) + b"\n\n"


class MessagesStreamWriter:
    """One answer's SSE events, from the gateway's Delta / Finish events.

    Content blocks open and close as the kind of text changes (thinking, text, one block
    per tool call by `ToolCallDelta.index`); they never overlap. Arguments that arrive for
    a tool call whose block has closed (an upstream interleaving parallel calls) go to
    that block's index still, which is where the SDK's accumulator puts them.
    """

    def __init__(self, message_id: str, model: str) -> None:
        self._id = message_id
        self._model = model
        self._started = False
        self._finished = False
        self._blocks = 0  # content blocks opened so far
        self._open: str | None = None  # "thinking", "text" or "tool:<index>"
        self._tools: dict[int, int] = {}  # ToolCallDelta.index → content-block index

    def start(self, prompt_usage: Usage | None) -> bytes:
        if self._started:
            return b""
        self._started = True
        message = _message(self._id, self._model, [], prompt_usage or Usage())
        return _event("message_start", {"type": "message_start", "message": message})

    def delta(self, delta: Delta) -> bytes:
        if self._finished:
            return b""
        out = [self.start(delta.prompt_usage)]
        if delta.reasoning:
            out.append(self._text("thinking", "thinking_delta", "thinking", delta.reasoning))
        if delta.content:
            out.append(self._text("text", "text_delta", "text", delta.content))
        for call in delta.tool_calls or ():
            out.append(self._tool(call))
        return b"".join(out)

    def finish(
        self, finish: Ending, usage: Usage | None = None, *, stop_sequence: str | None = None
    ) -> bytes:
        """The last events; `usage` (the billed counts) defaults to `finish.usage`."""
        if self._finished:
            return b""
        out = [self.start(None)]
        if not self._blocks:  # as the non-streamed body: never an empty content list
            out.append(self._open_block("text", {"type": "text", "text": ""}))
        out.append(self._close())
        self._finished = True
        reason = stop_reason_of(finish.finish_reason, finish.native_finish_reason, stop_sequence)
        delta = {"stop_reason": reason, "stop_sequence": stop_sequence}
        counts = usage_body(finish.usage if usage is None else usage)
        end = {"type": "message_delta", "delta": delta, "usage": counts}
        out.append(_event("message_delta", end))
        out.append(_event("message_stop", {"type": "message_stop"}))
        return b"".join(out)

    def ping(self) -> bytes:
        return _event("ping", {"type": "ping"})

    def error(self, error: GatewayError) -> bytes:
        self._finished = True
        return _event("error", _error_json(error))

    # -- blocks ---------------------------------------------------------------------------
    def _text(self, kind: str, delta_type: str, field: str, piece: str) -> bytes:
        opened = b""
        if self._open != kind:
            empty: Json = {"type": kind, kind: ""}
            if kind == "thinking":
                empty["signature"] = ""
            opened = self._open_block(kind, empty)
        delta = {"type": delta_type, field: piece}
        return opened + self._block_delta(self._blocks - 1, delta)

    def _tool(self, call: ToolCallDelta) -> bytes:
        opened = b""
        index = self._tools.get(call.index)
        if index is None:
            block = _tool_use_block(call.id or f"call_{call.index}", call.name or "", {})
            opened = self._open_block(f"tool:{call.index}", block)
            index = self._tools[call.index] = self._blocks - 1
        if not call.arguments:
            return opened
        delta = {"type": "input_json_delta", "partial_json": call.arguments}
        return opened + self._block_delta(index, delta)

    def _open_block(self, kind: str, block: Json) -> bytes:
        closed = self._close()
        self._open = kind
        self._blocks += 1
        start = {"type": "content_block_start", "index": self._blocks - 1, "content_block": block}
        return closed + _event("content_block_start", start)

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        self._open = None
        stop = {"type": "content_block_stop", "index": self._blocks - 1}
        return _event("content_block_stop", stop)

    def _block_delta(self, index: int, delta: Json) -> bytes:
        data = {"type": "content_block_delta", "index": index, "delta": delta}
        return _event("content_block_delta", data)
