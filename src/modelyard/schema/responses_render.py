"""Answers in the OpenAI Responses shapes: the response object, its output items, its SSE
events.

One shape serves /v1 (OpenAI's SDKs) and /api/v1 (OpenRouter's, whose schemas also ask
for `completed_at`, `frequency_penalty`, `presence_penalty`, and read `output_text` and
`usage.cost`); each SDK ignores the fields it does not know.

Output items are a reasoning item (the model's own text as a `reasoning_text` part: there
is no summary to give), an assistant message with one `output_text` part (with the tokens'
logprobs when asked for; left out when the answer is only tool calls, empty when the answer
is nothing) and a `function_call` item per tool call. Item ids derive from the response id
and the item's place in `output` (`msg_<response hex>_1`), so the items streamed are the
items stored.

A stream opens an item when its kind of output starts and closes it when another starts;
function calls stay open until the end, so arguments that arrive for an earlier call (an
upstream interleaving parallel calls) still go to its item.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import msgspec

from modelyard.errors import GatewayError, InvalidRequest, RateLimited, UpstreamError
from modelyard.providers.base import Completion, Delta, ToolCallDelta, Usage
from modelyard.schema.messages_render import Ending
from modelyard.schema.response import KEEPALIVE, token_logprobs
from modelyard.schema.responses import ResponsesCall, function_name

Json = dict[str, Any]
Names = dict[str, tuple[str, str]]  # ResponsesCall.namespaced
_encode = msgspec.json.encode
# Finish reasons that leave a response incomplete, and the reason OpenAI gives.
_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}
_TEXT = {"message": "output_text", "reasoning": "reasoning_text"}  # event names' middle


def _seed(response_id: str) -> str:
    return response_id.removeprefix("resp_")


def _item_id(prefix: str, seed: str, index: int) -> str:
    return f"{prefix}_{seed}_{index}"


def status_of(finish_reason: str) -> tuple[str, str | None]:
    """The response's status for how the answer finished, and why it is incomplete."""
    if finish_reason == "error":
        return "failed", None
    reason = _INCOMPLETE.get(finish_reason)
    return ("incomplete", reason) if reason else ("completed", None)


# -- output items ---------------------------------------------------------------------------


def _output_text(text: str, logprobs: list[Json] | None = None) -> Json:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": logprobs or []}


def _message_item(
    item_id: str, text: str | None, status: str, logprobs: list[Json] | None = None
) -> Json:
    content = [] if text is None else [_output_text(text, logprobs)]
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": content,
    }


def _reasoning_item(item_id: str, text: str | None, status: str) -> Json:
    content = [] if text is None else [{"type": "reasoning_text", "text": text}]
    return {"id": item_id, "type": "reasoning", "summary": [], "content": content, "status": status}


def _function_call_item(
    item_id: str, call_id: str, chat_name: str, arguments: str, status: str, names: Names
) -> Json:
    name, namespace = function_name(names, chat_name)
    item = {
        "id": item_id,
        "type": "function_call",
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }
    if namespace is not None:  # absent, not null, outside a namespace (OpenRouter's schema)
        item["namespace"] = namespace
    return item


def output_items(
    completion: Completion, *, id_seed: str, call: ResponsesCall | None = None
) -> list[Json]:
    """The answer's output items; `id_seed` is the response id, `call` the request (whose
    namespaces name the functions called)."""
    names = call.namespaced if call is not None else {}
    seed = _seed(id_seed)
    status = "completed" if status_of(completion.finish_reason)[0] == "completed" else "incomplete"
    items: list[Json] = []
    if completion.reasoning:
        items.append(_reasoning_item(_item_id("rs", seed, 0), completion.reasoning, status))
    if completion.content or not completion.tool_calls:
        message_id = _item_id("msg", seed, len(items))
        logprobs = token_logprobs(completion.logprobs or [])
        items.append(_message_item(message_id, completion.content or "", status, logprobs))
    for tool in completion.tool_calls:
        index = len(items)
        call_id = tool.id or _item_id("call", seed, index)
        item_id = _item_id("fc", seed, index)
        items.append(
            _function_call_item(item_id, call_id, tool.name, tool.arguments, status, names)
        )
    return items


def output_text(output: list[Json]) -> str:
    """The text of the output's messages, as the SDKs' `output_text` gives it."""
    return "".join(
        part["text"]
        for item in output
        if item["type"] == "message"
        for part in item["content"]
        if part["type"] == "output_text"
    )


# -- the response object --------------------------------------------------------------------


def usage_body(usage: Usage, cost: Decimal | None = None) -> Json:
    body: Json = {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {
            "cached_tokens": usage.cached_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
        },
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.total_tokens,
    }
    if cost is not None:
        body["cost"] = float(cost)  # OpenRouter's
    return body


def error_code(error: GatewayError) -> str:
    """The nearest of the codes a response's `error` may carry (an enum in both SDKs)."""
    if isinstance(error, RateLimited) or error.status == 429:
        return "rate_limit_exceeded"
    if isinstance(error, InvalidRequest) or (
        isinstance(error, UpstreamError) and error.status == 400
    ):
        return "invalid_prompt"
    return "server_error"


def response_object(
    response_id: str,
    created_at: int,
    model: str,
    call: ResponsesCall,
    *,
    status: str,
    output: list[Json],
    usage: Usage | None,
    incomplete_reason: str | None = None,
    error: GatewayError | None = None,
    cost: Decimal | None = None,
) -> Json:
    """The response, echoing the request's fields as OpenAI does."""
    body = call.body
    reasoning = body.get("reasoning")
    text = body.get("text") or {}
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "completed_at": int(time.time()) if status == "completed" else None,
        "background": False,
        "error": None if error is None else {"code": error_code(error), "message": error.message},
        "incomplete_details": None if incomplete_reason is None else {"reason": incomplete_reason},
        "instructions": call.instructions,
        "max_output_tokens": body.get("max_output_tokens"),
        "metadata": call.metadata or {},
        "model": model,
        "output": output,
        "output_text": output_text(output),
        "parallel_tool_calls": body.get("parallel_tool_calls") is not False,
        "previous_response_id": call.previous_response_id,
        "prompt_cache_key": body.get("prompt_cache_key"),
        "reasoning": None
        if reasoning is None
        else {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "safety_identifier": body.get("safety_identifier"),
        "service_tier": "default",
        "store": call.store,
        "temperature": body.get("temperature"),
        "top_p": body.get("top_p"),
        "top_logprobs": body.get("top_logprobs"),
        "frequency_penalty": body.get("frequency_penalty"),
        "presence_penalty": body.get("presence_penalty"),
        "text": {
            "format": text.get("format") or {"type": "text"},
            "verbosity": text.get("verbosity") or "medium",
        },
        "tool_choice": body.get("tool_choice") or "auto",
        "tools": [_tool(tool) for tool in body.get("tools") or ()],
        "truncation": body.get("truncation") or "disabled",
        "usage": None if usage is None else usage_body(usage, cost),
        "user": body.get("user"),
    }


def _tool(tool: Json) -> Json:
    """A tool as given; a function with `parameters` (null when it takes none: both SDKs
    want the key) and `strict` (true unless told otherwise), as OpenAI echoes it."""
    if tool.get("type") != "function":
        return tool
    return {**tool, "parameters": tool.get("parameters"), "strict": tool.get("strict", True)}


# -- streaming ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Open:
    """An output item being streamed."""

    kind: str  # "message", "reasoning" or "function_call"
    item_id: str
    index: int  # in `output`
    pieces: list[str] = field(default_factory=list)
    logprobs: list[Json] = field(default_factory=list)  # of a message's tokens
    call_id: str = ""
    name: str = ""
    status: str = "in_progress"

    def item(self, names: Names, *, empty: bool = False) -> Json:
        text = None if empty else "".join(self.pieces)
        if self.kind == "message":
            return _message_item(self.item_id, text, self.status, self.logprobs)
        if self.kind == "reasoning":
            return _reasoning_item(self.item_id, text, self.status)
        arguments = "" if empty else "".join(self.pieces)
        return _function_call_item(
            self.item_id, self.call_id, self.name, arguments, self.status, names
        )


class ResponsesStreamWriter:
    """One response's SSE events, from the gateway's Delta / Billed events."""

    def __init__(self, response_id: str, created_at: int, model: str, call: ResponsesCall) -> None:
        self._id = response_id
        self._seed = _seed(response_id)
        self._created_at = created_at
        self._model = model
        self._call = call
        self._names = call.namespaced
        self._sequence = 0
        self._started = False
        self._finished = False
        self._items: list[_Open] = []
        self._open: _Open | None = None  # the message or reasoning item being streamed
        self._calls: dict[int, _Open] = {}  # ToolCallDelta.index → its item
        # The response the last event carried, once finished (what the archive keeps).
        self.final: Json | None = None

    @property
    def output(self) -> list[Json]:
        """The output items so far."""
        return [item.item(self._names) for item in self._items]

    def start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        response = self._response("in_progress", None)
        return self._event("response.created", response=response) + self._event(
            "response.in_progress", response=response
        )

    def delta(self, delta: Delta) -> bytes:
        if self._finished:
            return b""
        out = [self.start()]
        if delta.reasoning:
            out.append(self._text("reasoning", delta.reasoning))
        if delta.content:
            logprobs = token_logprobs(delta.logprobs or [])
            out.append(self._text("message", delta.content, logprobs))
        for call in delta.tool_calls or ():
            out.append(self._tool(call))
        return b"".join(out)

    def finish(
        self, ending: Ending, usage: Usage | None = None, *, cost: Decimal | None = None
    ) -> bytes:
        """The last events; `usage` (the billed counts) defaults to `ending.usage`."""
        if self._finished:
            return b""
        out = [self.start()]
        if not self._items:  # as the whole response: always a message
            out.append(self._add("message"))
        status, reason = status_of(ending.finish_reason)
        item_status = "completed" if status == "completed" else "incomplete"
        out.append(self._close(self._open, item_status))
        for item in self._calls.values():
            out.append(self._close(item, item_status))
        self._finished = True
        error = None
        if status == "failed":
            error = UpstreamError("the model's answer ended in an error")
        response = self._response(
            status,
            ending.usage if usage is None else usage,
            incomplete_reason=reason,
            error=error,
            cost=cost,
        )
        self.final = response
        out.append(self._event(f"response.{status}", response=response))
        return b"".join(out)

    def error(self, error: GatewayError) -> bytes:
        """response.failed, with the items so far (left incomplete)."""
        if self._finished:
            return b""
        out = [self.start()]
        self._finished = True
        for item in self._items:
            if item.status == "in_progress":
                item.status = "incomplete"
        response = self._response("failed", None, error=error)
        out.append(self._event("response.failed", response=response))
        return b"".join(out)

    def keepalive(self) -> bytes:
        return KEEPALIVE

    # -- items ----------------------------------------------------------------------------
    def _text(self, kind: str, piece: str, logprobs: list[Json] | None = None) -> bytes:
        opened = b""
        if self._open is None or self._open.kind != kind:
            opened = self._close(self._open, "completed") + self._add(kind)
        item = self._open
        assert item is not None
        item.pieces.append(piece)
        item.logprobs += logprobs or ()
        delta_type = f"response.{_TEXT[kind]}.delta"
        extra: Json = {"logprobs": logprobs or []} if kind == "message" else {}
        return opened + self._event(
            delta_type,
            item_id=item.item_id,
            output_index=item.index,
            content_index=0,
            delta=piece,
            **extra,
        )

    def _add(self, kind: str) -> bytes:
        """Open a message or reasoning item: its item and its one part."""
        index = len(self._items)
        prefix = "msg" if kind == "message" else "rs"
        item = _Open(kind, _item_id(prefix, self._seed, index), index)
        self._items.append(item)
        self._open = item
        added = self._event(
            "response.output_item.added",
            output_index=index,
            item=item.item(self._names, empty=True),
        )
        return added + self._event(
            "response.content_part.added",
            item_id=item.item_id,
            output_index=index,
            content_index=0,
            part=_part(kind, ""),
        )

    def _tool(self, call: ToolCallDelta) -> bytes:
        opened = b""
        item = self._calls.get(call.index)
        if item is None:
            opened = self._close(self._open, "completed")
            index = len(self._items)
            item = _Open("function_call", _item_id("fc", self._seed, index), index)
            item.call_id = call.id or _item_id("call", self._seed, index)
            item.name = call.name or ""
            self._items.append(item)
            self._calls[call.index] = item
            opened += self._event(
                "response.output_item.added",
                output_index=index,
                item=item.item(self._names, empty=True),
            )
        elif call.name and not item.name:
            item.name = call.name
        if not call.arguments:
            return opened
        item.pieces.append(call.arguments)
        return opened + self._event(
            "response.function_call_arguments.delta",
            item_id=item.item_id,
            output_index=item.index,
            delta=call.arguments,
        )

    def _close(self, item: _Open | None, status: str) -> bytes:
        if item is None or item.status != "in_progress":
            return b""
        if item is self._open:
            self._open = None
        item.status = status
        text = "".join(item.pieces)
        at: Json = {"item_id": item.item_id, "output_index": item.index}
        if item.kind == "function_call":
            done = self._event(
                "response.function_call_arguments.done", **at, name=item.name, arguments=text
            )
        else:
            extra: Json = {"logprobs": item.logprobs} if item.kind == "message" else {}
            part = _part(item.kind, text, item.logprobs)
            done = self._event(
                f"response.{_TEXT[item.kind]}.done", **at, content_index=0, text=text, **extra
            )
            done += self._event("response.content_part.done", **at, content_index=0, part=part)
        return done + self._event(
            "response.output_item.done", output_index=item.index, item=item.item(self._names)
        )

    def _response(
        self,
        status: str,
        usage: Usage | None,
        *,
        incomplete_reason: str | None = None,
        error: GatewayError | None = None,
        cost: Decimal | None = None,
    ) -> Json:
        return response_object(
            self._id,
            self._created_at,
            self._model,
            self._call,
            status=status,
            output=self.output,
            usage=usage,
            incomplete_reason=incomplete_reason,
            error=error,
            cost=cost,
        )

    def _event(self, kind: str, **fields: Any) -> bytes:
        data = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return b"event: " + kind.encode() + b"\ndata: " + _encode(data) + b"\n\n"


def _part(kind: str, text: str, logprobs: list[Json] | None = None) -> Json:
    if kind == "message":
        return _output_text(text, logprobs)
    return {"type": "reasoning_text", "text": text}
