"""Provider kind `openai`: any upstream that speaks the Chat Completions API.

OpenAI, OpenRouter, Heroku Inference, Vercel AI Gateway, vLLM, llama.cpp's server, … The
request is passed through as the client sent it, minus the parameters the endpoint does not
support; the answer is normalised defensively, because these servers differ in the details
(reasoning fields, where streamed usage arrives, finish reasons next to tool calls).
"""

from __future__ import annotations

import contextlib
import math
import secrets
from collections.abc import AsyncGenerator
from typing import Any, ClassVar

import msgspec
import orjson

from modelyard.catalog import Endpoint
from modelyard.catalog.parameters import SAMPLING_FIELDS
from modelyard.catalog.spec import ProviderSpec
from modelyard.errors import UpstreamError
from modelyard.providers.base import (
    Completion,
    Delta,
    Embeddings,
    Finish,
    JSONDict,
    StreamEvent,
    TokenLogprob,
    ToolCall,
    ToolCallDelta,
    Usage,
    finish_reason_of,
)
from modelyard.providers.http import HttpAdapter, api_key
from modelyard.schema.chat import ChatRequest
from modelyard.schema.embeddings import EmbeddingsRequest

# Request fields sent as they are when the client set them and the endpoint supports them.
_PASSTHROUGH = (*SAMPLING_FIELDS, "stop", "logit_bias", "response_format", "reasoning")


class OpenAIProvider(HttpAdapter):
    kind: ClassVar[str] = "openai"

    def unavailable_reason(self, endpoint: Endpoint) -> str | None:
        if not endpoint.provider.base_url:
            return f"provider {endpoint.provider.id!r} has no base_url in the catalog"
        return None

    async def complete(self, request: ChatRequest, endpoint: Endpoint) -> Completion:
        spec = endpoint.provider
        answer = await self._http.post_json(
            spec, _url(spec), _headers(spec), request_body(request, endpoint)
        )
        return parse_completion(spec, answer)

    async def stream(
        self, request: ChatRequest, endpoint: Endpoint
    ) -> AsyncGenerator[StreamEvent, None]:
        spec = endpoint.provider
        body = {
            **request_body(request, endpoint),
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        reader = StreamReader(spec)
        # aclosing: when our consumer closes us early (client gone), the upstream
        # connection is closed now, not whenever the inner generator is collected.
        events = self._http.post_sse(spec, _url(spec), _headers(spec), body)
        async with contextlib.aclosing(events):
            try:
                async for event in events:
                    if event.data.strip() == "[DONE]":
                        break
                    reader.events_seen += 1
                    delta = reader.read(event.data)
                    if delta is not None:
                        yield delta
            except UpstreamError as error:
                # After the finish reason the answer is complete: at most the usage is lost.
                if reader.native_finish is None:
                    if reader.events_seen and not reader.yielded:
                        # Only empty chunks (the role) came before it broke: safe to retry.
                        error.retryable = True
                    raise
        yield reader.finish()

    async def embed(self, request: EmbeddingsRequest, endpoint: Endpoint) -> Embeddings:
        """POST {base_url}/embeddings (OpenAI, OpenRouter, Vercel, Heroku, vLLM, llama.cpp
        server). Vectors are always asked for as floats: the front door encodes them."""
        spec = endpoint.provider
        body: JSONDict = {"model": endpoint.upstream_model, "input": request.input}
        for name in ("dimensions", "user", "input_type"):
            value = getattr(request, name)
            if value is not None:
                body[name] = value
        answer = await self._http.post_json(spec, _url(spec, "/embeddings"), _headers(spec), body)
        return parse_embeddings(spec, answer, request.count)


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


def _url(spec: ProviderSpec, path: str = "/chat/completions") -> str:
    if not spec.base_url:
        raise UpstreamError(f"provider {spec.id!r} has no base_url", retryable=True)
    return spec.base_url.rstrip("/") + path


def _headers(spec: ProviderSpec) -> dict[str, str]:
    key = api_key(spec)
    return {"Authorization": f"Bearer {key}"} if key else {}


# -- the request ---------------------------------------------------------------------------
def request_body(request: ChatRequest, endpoint: Endpoint) -> JSONDict:
    """The upstream's body: only what the client set and this endpoint supports."""
    supported = endpoint.supported_parameters
    body: JSONDict = {"model": endpoint.upstream_model, "messages": _plain(request.messages)}
    for name in _PASSTHROUGH:
        value = getattr(request, name)
        if value is not None and name in supported:
            body[name] = _plain(value)
    limit = request.output_limit
    if limit is not None and "max_tokens" in supported:
        body["max_tokens"] = min(limit, endpoint.max_output)
    if request.logprobs is not None and "logprobs" in supported:
        body["logprobs"] = request.logprobs
        # OpenAI rejects top_logprobs without logprobs.
        if request.logprobs and request.top_logprobs is not None and "top_logprobs" in supported:
            body["top_logprobs"] = request.top_logprobs
    if request.tools and "tools" in supported:
        body["tools"] = _plain(request.tools)
        # tool_choice and parallel_tool_calls are refused without tools.
        for name in ("tool_choice", "parallel_tool_calls"):
            value = getattr(request, name)
            if value is not None and name in supported:
                body[name] = _plain(value)
    if request.user is not None:
        # Attribution, not a model parameter: every Chat Completions server accepts it.
        body["user"] = request.user
    return body


def _plain(value: Any) -> Any:
    """Request structs as JSON values, leaving out the fields the client did not set.

    Unlike `msgspec.to_builtins` this drops None-valued struct fields, but keeps nulls
    inside free-form JSON (a tool's JSON Schema may say `"default": null`)."""
    if isinstance(value, msgspec.Struct):
        config = value.__struct_config__
        out: JSONDict = {}
        if config.tag_field is not None:
            out[config.tag_field] = config.tag
        for name in value.__struct_fields__:
            item = getattr(value, name)
            if item is not None:
                out[name] = _plain(item)
        return out
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


# -- the answer ----------------------------------------------------------------------------
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
