"""Reading an `openai` upstream's answers: completions, stream chunks, embeddings, usage.

Normalised defensively, because these servers differ in the details (reasoning fields,
where streamed usage arrives, finish reasons next to tool calls).
"""

from __future__ import annotations

import math
import secrets
from typing import Any

import orjson

from modelyard.catalog.spec import ProviderSpec
from modelyard.errors import UpstreamError
from modelyard.providers.base import (
    Completion,
    Delta,
    Embeddings,
    Finish,
    TokenLogprob,
    ToolCall,
    ToolCallDelta,
    Usage,
    finish_reason_of,
)


def parse_completion(spec: ProviderSpec, answer: Any) -> Completion:
    if not isinstance(answer, dict):
        raise _malformed(spec, "the answer is not a JSON object")
    if answer.get("error"):
        raise _reported_error(spec, answer["error"], retryable=True)
    choices = answer.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise _malformed(spec, "the answer has no choices")
    choice = choices[0]
    message = choice.get("message")
    if not isinstance(message, dict):
        raise _malformed(spec, "the answer's choice has no message")
    native = choice.get("finish_reason")
    native = native if isinstance(native, str) and native else "stop"
    tool_calls = _tool_calls(message.get("tool_calls"))
    return Completion(
        content=_text(message.get("content")),
        finish_reason=_normalised_finish(native, bool(tool_calls)),
        native_finish_reason=native,
        usage=usage_of(answer.get("usage")),
        tool_calls=tool_calls,
        reasoning=_reasoning(message),
        logprobs=_logprobs(choice.get("logprobs")),
    )


class StreamReader:
    """Turns the chunks of one stream into Deltas, remembering finish reason and usage."""

    def __init__(self, spec: ProviderSpec) -> None:
        self._spec = spec
        self.native_finish: str | None = None
        self.usage = Usage()
        self.events_seen = 0
        self.yielded = False
        self._tool_calls = False

    def read(self, data: str) -> Delta | None:
        """The Delta in one chunk, or None for a chunk with nothing to relay."""
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            chunk = None
        if not isinstance(chunk, dict):
            raise _malformed(
                self._spec, f"invalid stream chunk {data[:200]!r}", retryable=not self.yielded
            )
        if chunk.get("error"):
            raise _reported_error(self._spec, chunk["error"], retryable=not self.yielded)
        # Usage usually comes alone in a last chunk with `choices: []`; some servers put
        # it on the finishing chunk or send `usage: null` on every chunk.
        if isinstance(chunk.get("usage"), dict):
            self.usage = usage_of(chunk["usage"])
        choices = chunk.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            return None
        choice = choices[0]
        reason = choice.get("finish_reason")
        if isinstance(reason, str) and reason:
            self.native_finish = reason
        delta = choice.get("delta")
        if not isinstance(delta, dict):
            delta = {}
        content = _text(delta.get("content")) or None
        reasoning = _reasoning(delta) or None
        tool_calls = _tool_call_deltas(delta.get("tool_calls"))
        logprobs = _logprobs(choice.get("logprobs")) or None
        if not (content or reasoning or tool_calls or logprobs):
            return None
        self._tool_calls = self._tool_calls or bool(tool_calls)
        self.yielded = True
        return Delta(content, reasoning, tool_calls, logprobs)

    def finish(self) -> Finish:
        if self.native_finish is None:
            raise UpstreamError(
                "the upstream stream ended early",
                retryable=not self.yielded,
                metadata={"provider_name": self._spec.id},
            )
        native = self.native_finish
        return Finish(_normalised_finish(native, self._tool_calls), native, self.usage)


def usage_of(raw: Any) -> Usage:
    """OpenAI's usage object; anything missing or malformed counts as zero."""
    if not isinstance(raw, dict):
        return Usage()
    prompt = raw.get("prompt_tokens_details")
    prompt = prompt if isinstance(prompt, dict) else {}
    completion = raw.get("completion_tokens_details")
    completion = completion if isinstance(completion, dict) else {}
    return Usage(
        prompt_tokens=_count(raw.get("prompt_tokens")),
        completion_tokens=_count(raw.get("completion_tokens")),
        cached_tokens=_count(prompt.get("cached_tokens")),
        cache_write_tokens=_count(prompt.get("cache_write_tokens")),
        reasoning_tokens=_count(completion.get("reasoning_tokens")),
    )


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    if not math.isfinite(value) or value < 0:
        return 0
    return int(value)


def _normalised_finish(native: str, has_tool_calls: bool) -> str:
    reason = finish_reason_of(native)
    # Some servers (vLLM, llama.cpp) say "stop" after a tool call; clients look for tool_calls.
    return "tool_calls" if has_tool_calls and reason == "stop" else reason


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # content as parts, as some servers answer
        parts = [p["text"] for p in value if isinstance(p, dict) and isinstance(p.get("text"), str)]
        return "".join(parts)
    return None


def _reasoning(message: dict[str, Any]) -> str | None:
    # OpenRouter says `reasoning`; vLLM and DeepSeek say `reasoning_content`.
    for name in ("reasoning", "reasoning_content"):
        value = message.get(name)
        if isinstance(value, str):
            return value
    return None


def _arguments(value: Any) -> str:
    if isinstance(value, str):
        return value
    return "{}" if value is None else orjson.dumps(value).decode()


def _tool_calls(raw: Any) -> list[ToolCall]:
    calls: list[ToolCall] = []
    for item in raw if isinstance(raw, list) else ():
        function = item.get("function") if isinstance(item, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            continue
        call_id = item.get("id")
        calls.append(
            ToolCall(
                id=call_id if isinstance(call_id, str) and call_id else _call_id(),
                name=function["name"],
                arguments=_arguments(function.get("arguments")),
            )
        )
    return calls


def _tool_call_deltas(raw: Any) -> list[ToolCallDelta] | None:
    if not isinstance(raw, list):
        return None
    deltas: list[ToolCallDelta] = []
    for position, item in enumerate(raw):
        if not isinstance(item, dict):
            continue
        function = item.get("function")
        function = function if isinstance(function, dict) else {}
        index, call_id, name = item.get("index"), item.get("id"), function.get("name")
        arguments = function.get("arguments")
        deltas.append(
            ToolCallDelta(
                index=index if isinstance(index, int) else position,
                id=call_id if isinstance(call_id, str) else None,
                name=name if isinstance(name, str) else None,
                arguments="" if arguments is None else _arguments(arguments),
            )
        )
    return deltas or None


def _logprobs(raw: Any) -> list[TokenLogprob] | None:
    content = raw.get("content") if isinstance(raw, dict) else None
    if not isinstance(content, list):
        return None
    items: list[TokenLogprob] = []
    for entry in content:
        if not isinstance(entry, dict) or not isinstance(entry.get("token"), str):
            continue
        top = [
            (alt["token"], float(alt["logprob"]))
            for alt in entry.get("top_logprobs") or ()
            if isinstance(alt, dict)
            and isinstance(alt.get("token"), str)
            and isinstance(alt.get("logprob"), int | float)
        ]
        logprob = entry.get("logprob")
        # -9999 is what OpenAI itself reports for a token of (practically) zero probability.
        value = float(logprob) if isinstance(logprob, int | float) else -9999.0
        items.append(TokenLogprob(entry["token"], value, top))
    return items


def _malformed(spec: ProviderSpec, what: str, *, retryable: bool = True) -> UpstreamError:
    return UpstreamError(
        f"{spec.id} sent a malformed answer: {what}",
        upstream_status=200,
        retryable=retryable,
        metadata={"provider_name": spec.id},
    )


def _reported_error(spec: ProviderSpec, error: Any, *, retryable: bool) -> UpstreamError:
    """An `error` object inside a 200 answer or a stream chunk (OpenRouter does this)."""
    message = error.get("message") if isinstance(error, dict) else error
    code = error.get("code") if isinstance(error, dict) else None
    return UpstreamError(
        f"{spec.id} reported an error: {message if isinstance(message, str) else error}",
        upstream_status=code if isinstance(code, int) and not isinstance(code, bool) else None,
        retryable=retryable,
        metadata={"provider_name": spec.id},
    )


def _call_id() -> str:
    return "call_" + secrets.token_hex(12)


def parse_embeddings(spec: ProviderSpec, answer: Any, count: int) -> Embeddings:
    data = answer.get("data") if isinstance(answer, dict) else None
    if not isinstance(data, list) or len(data) != count:
        raise _malformed(spec, f"an embeddings answer without {count} vectors")
    vectors: list[list[float] | None] = [None] * count
    for position, item in enumerate(data):
        index = item.get("index", position) if isinstance(item, dict) else None
        vector = item.get("embedding") if isinstance(item, dict) else None
        if not isinstance(index, int) or not 0 <= index < count or not isinstance(vector, list):
            raise _malformed(spec, "an embeddings answer with a malformed item")
        vectors[index] = vector
    if any(vector is None for vector in vectors):
        raise _malformed(spec, "an embeddings answer that repeats an index")
    usage = usage_of(answer.get("usage"))
    return Embeddings([v for v in vectors if v is not None], usage)
