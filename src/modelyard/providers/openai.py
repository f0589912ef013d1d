"""Provider kind `openai`: any upstream that speaks the Chat Completions API.

OpenAI, OpenRouter, Heroku Inference, Vercel AI Gateway, vLLM, llama.cpp's server, … The
translation lives next door: `openai_request` builds the upstream body, `openai_response`
reads answers and stream chunks back.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from typing import ClassVar

from modelyard.catalog import Endpoint
from modelyard.catalog.kinds import ProviderKindInfo
from modelyard.catalog.parameters import ALWAYS, SAMPLING
from modelyard.catalog.spec import ProviderSpec
from modelyard.errors import UpstreamError
from modelyard.providers.base import Completion, Embeddings, JSONDict, StreamEvent
from modelyard.providers.http import HttpAdapter, api_key
from modelyard.providers.openai_request import request_body
from modelyard.providers.openai_response import StreamReader, parse_completion, parse_embeddings
from modelyard.schema.chat import ChatRequest
from modelyard.schema.embeddings import EmbeddingsRequest

OPENAI_KIND = ProviderKindInfo(
    kind="openai",
    default_parameters=ALWAYS
    | SAMPLING
    | {"tools", "tool_choice", "parallel_tool_calls", "response_format", "structured_outputs"},
)


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


def _url(spec: ProviderSpec, path: str = "/chat/completions") -> str:
    if not spec.base_url:
        raise UpstreamError(f"provider {spec.id!r} has no base_url", retryable=True)
    return spec.base_url.rstrip("/") + path


def _headers(spec: ProviderSpec) -> dict[str, str]:
    key = api_key(spec)
    return {"Authorization": f"Bearer {key}"} if key else {}
