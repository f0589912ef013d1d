"""Provider kind `anthropic`: the Anthropic Messages API (POST {base_url}/v1/messages).

The translation lives next door: `anthropic_request` builds the Messages body from a
Chat Completions request, `anthropic_response` reads answers and stream events back.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from typing import Any, ClassVar

from modelyard.catalog import Endpoint
from modelyard.catalog.kinds import ProviderKindInfo
from modelyard.catalog.parameters import ALWAYS
from modelyard.catalog.spec import ProviderSpec
from modelyard.errors import UpstreamError
from modelyard.providers.anthropic_native import (
    DIALECT,
    count_body,
    native_body,
    native_headers,
)
from modelyard.providers.anthropic_request import translate_request
from modelyard.providers.anthropic_response import (
    StreamTranslator,
    completion_of,
    stream_error,
)
from modelyard.providers.base import Completion, Delta, NativeRequest, StreamEvent
from modelyard.providers.http import HttpAdapter, api_key
from modelyard.schema.chat import ChatRequest

ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_BASE_URL = "https://api.anthropic.com"

# Its prompt caching is explicit (cache_control, see anthropic_caching), not implicit.
ANTHROPIC_KIND = ProviderKindInfo(
    kind="anthropic",
    default_parameters=ALWAYS
    | {"temperature", "top_p", "top_k", "tools", "tool_choice", "reasoning"},
)


class AnthropicProvider(HttpAdapter):
    kind: ClassVar[str] = "anthropic"
    native_dialect: ClassVar[str] = DIALECT

    def unavailable_reason(self, endpoint: Endpoint) -> str | None:
        # The planner already drops endpoints whose key variable is unset; a provider
        # without api_key_env may be a proxy that holds the key itself.
        return None

    async def complete(self, request: ChatRequest, endpoint: Endpoint) -> Completion:
        spec = endpoint.provider
        call = translate_request(request, endpoint, stream=False)
        body = await self._http.post_json(spec, messages_url(spec), _headers(spec), call.body)
        if isinstance(body, dict) and body.get("type") == "error":
            raise stream_error(spec, body.get("error"))
        return completion_of(spec, body, call.show_reasoning)

    async def stream(
        self, request: ChatRequest, endpoint: Endpoint
    ) -> AsyncGenerator[StreamEvent, None]:
        call = translate_request(request, endpoint, stream=True)
        events = self._events(endpoint, call.body, {}, call.show_reasoning, native=False)
        async with contextlib.aclosing(events):
            async for event in events:
                yield event

    # -- the client's own Messages request, sent on as it came (anthropic_native) ----------
    async def complete_native(
        self, native: NativeRequest, request: ChatRequest, endpoint: Endpoint
    ) -> Completion:
        spec = endpoint.provider
        body = native_body(native, endpoint, stream=False)
        headers = {**_headers(spec), **native_headers(native)}
        answer = await self._http.post_json(spec, messages_url(spec), headers, body)
        if isinstance(answer, dict) and answer.get("type") == "error":
            raise stream_error(spec, answer.get("error"))
        completion = completion_of(spec, answer, show_reasoning=True)
        completion.native = answer
        return completion

    async def stream_native(
        self, native: NativeRequest, request: ChatRequest, endpoint: Endpoint
    ) -> AsyncGenerator[StreamEvent, None]:
        body = native_body(native, endpoint, stream=True)
        events = self._events(endpoint, body, native_headers(native), True, native=True)
        async with contextlib.aclosing(events):
            async for event in events:
                yield event

    async def count_native(self, native: NativeRequest, endpoint: Endpoint) -> int:
        spec = endpoint.provider
        headers = {**_headers(spec), **native_headers(native)}
        url = messages_url(spec) + "/count_tokens"
        answer = await self._http.post_json(spec, url, headers, count_body(native, endpoint))
        count = answer.get("input_tokens") if isinstance(answer, dict) else None
        if not isinstance(count, int):
            raise UpstreamError(f"{spec.id} answered count_tokens without input_tokens")
        return count

    async def _events(
        self,
        endpoint: Endpoint,
        body: dict[str, Any],
        extra_headers: dict[str, str],
        show_reasoning: bool,
        *,
        native: bool,
    ) -> AsyncGenerator[StreamEvent, None]:
        """The upstream's events as Delta / Finish; with `native`, each also carries the
        SSE event it came from (and events that translate to nothing ride a bare Delta)."""
        spec = endpoint.provider
        translator = StreamTranslator(spec, show_reasoning)
        sent_any = False
        pending = b""  # native events not yet handed on
        headers = {**_headers(spec), **extra_headers}
        # aclosing: closing this generator early must close the upstream connection now,
        # not whenever the inner generator is collected.
        events = self._http.post_sse(spec, messages_url(spec), headers, body)
        async with contextlib.aclosing(events):
            async for event in events:
                out = translator.feed(event)
                if native:
                    pending += f"event: {event.event}\ndata: {event.data}\n\n".encode()
                    if out:
                        out[0].native, pending = pending, b""
                    elif sent_any:
                        out, pending = [Delta(native=pending)], b""
                    # else: message_start and pings wait for the first content, so that
                    # the stream commits to this route on the same event as a chat one.
                for item in out:
                    sent_any = True
                    yield item
                if translator.finished:
                    return
        raise UpstreamError(
            f"{spec.id} ended the stream before message_stop", retryable=not sent_any
        )


def messages_url(spec: ProviderSpec) -> str:
    base = (spec.base_url or DEFAULT_BASE_URL).rstrip("/")
    # The catalog names the API root; tolerate a base_url that already ends in /v1.
    return base + ("/messages" if base.endswith("/v1") else "/v1/messages")


def _headers(spec: ProviderSpec) -> dict[str, str]:
    headers = {"anthropic-version": ANTHROPIC_VERSION}
    key = api_key(spec)
    if key:
        headers["x-api-key"] = key
    return headers
