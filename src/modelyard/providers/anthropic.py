"""Provider kind `anthropic`: the Anthropic Messages API (POST {base_url}/v1/messages).

The translation lives next door: `anthropic_request` builds the Messages body from a
Chat Completions request, `anthropic_response` reads answers and stream events back.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, ClassVar

from modelyard.catalog import Endpoint
from modelyard.catalog.spec import ProviderSpec
from modelyard.errors import UpstreamError
from modelyard.providers.anthropic_request import translate_request
from modelyard.providers.anthropic_response import (
    StreamTranslator,
    completion_of,
    stream_error,
)
from modelyard.providers.base import Completion, StreamEvent
from modelyard.providers.http import HttpAdapter, api_key
from modelyard.schema.chat import ChatRequest

if TYPE_CHECKING:
    pass

ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_BASE_URL = "https://api.anthropic.com"


class AnthropicProvider(HttpAdapter):
    kind: ClassVar[str] = "anthropic"

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
        spec = endpoint.provider
        call = translate_request(request, endpoint, stream=True)
        translator = StreamTranslator(spec, call.show_reasoning)
        sent_any = False
        # aclosing: closing this generator early must close the upstream connection now,
        # not whenever the inner generator is collected.
        events = self._http.post_sse(spec, messages_url(spec), _headers(spec), call.body)
        async with contextlib.aclosing(events):
            async for event in events:
                for out in translator.feed(event):
                    sent_any = True
                    yield out
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
