"""Run one request on its routes in order, moving on only on an error another may not have.

The wrapper that pydantic-ai's `FallbackModel` is for models: the service hands it the
planned routes and gets back the first answer (or stream) that worked. It also drives the
circuit breaker: every attempt ends as a success, a failure or a release of its probe.
A route whose adapter speaks the client's own dialect gets the request natively.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import TypeVar

from modelyard.errors import GatewayError, UpstreamError, UpstreamRateLimited
from modelyard.ledger.recorder import GenerationRecorder
from modelyard.providers.base import (
    Completion,
    Embeddings,
    NativeRequest,
    StreamEvent,
    embedder,
    native_speaker,
)
from modelyard.routing.health import HealthTracker
from modelyard.routing.planner import Route
from modelyard.schema.chat import ChatRequest
from modelyard.schema.embeddings import EmbeddingsRequest
from modelyard.service.event_pump import EventPump, StreamQuiet

T = TypeVar("T")


class FallbackRoutes:
    def __init__(
        self,
        request: ChatRequest,
        native: NativeRequest | None,
        routes: list[Route],
        recorder: GenerationRecorder,
        health: HealthTracker,
    ) -> None:
        self._request = request
        self._native = native
        self.routes = routes
        self._recorder = recorder
        self._health = health

    async def complete(self) -> tuple[Route, Completion]:
        return await self._first_success(self._complete_on)

    async def embed(self, request: EmbeddingsRequest) -> tuple[Route, Embeddings]:
        def embed_on(route: Route) -> Awaitable[Embeddings]:
            adapter = embedder(route.provider)
            if adapter is None:  # the catalog put an embedding model on a chat-only kind
                raise UpstreamError(
                    f"provider kind {route.endpoint.provider.kind!r} serves no embeddings",
                    retryable=True,
                )
            return adapter.embed(request, route.endpoint)

        return await self._first_success(embed_on)

    async def open_stream(self, wait_s: float) -> tuple[Route, EventPump, StreamEvent | None]:
        """Start a stream on the first route that yields an event (or has not failed by
        `wait_s`). Until the first event an error is still an ordinary error and the next
        route is tried; past `wait_s` we commit to this route so keep-alives can flow."""

        async def start(route: Route) -> tuple[EventPump, StreamEvent | None]:
            events = EventPump(self._stream_on(route))
            try:
                first = await events.next(wait_s)
            except StreamQuiet:
                return events, None
            except BaseException:
                await events.aclose()
                raise
            if first is None:
                await events.aclose()
                raise UpstreamError(
                    "the provider ended the stream without an answer", retryable=True
                )
            return events, first

        route, (events, first) = await self._first_success(start)
        return route, events, first

    def _complete_on(self, route: Route) -> Awaitable[Completion]:
        native = self._native
        speaker = native_speaker(route.provider, native)
        if speaker is not None and native is not None:
            return speaker.complete_native(native, self._request, route.endpoint)
        return route.provider.complete(self._request, route.endpoint)

    def _stream_on(self, route: Route) -> AsyncGenerator[StreamEvent, None]:
        native = self._native
        speaker = native_speaker(route.provider, native)
        if speaker is not None and native is not None:
            return speaker.stream_native(native, self._request, route.endpoint)
        return route.provider.stream(self._request, route.endpoint)

    async def _first_success(self, call: Callable[[Route], Awaitable[T]]) -> tuple[Route, T]:
        prefs = self._request.provider
        allow_fallbacks = prefs is None or prefs.allow_fallbacks
        recorder, health = self._recorder, self._health
        last: UpstreamError | None = None
        for route in self.routes:
            recorder.start_attempt()
            endpoint_id = route.endpoint.id
            try:
                result = await call(route)
            except UpstreamRateLimited as error:  # busy, not broken: no mark against it
                health.release(endpoint_id)
                recorder.attempt_failed(route, error)
                last = error
                if not allow_fallbacks:
                    break
                continue
            except UpstreamError as error:
                if error.retryable:
                    health.failure(endpoint_id)
                else:
                    health.release(endpoint_id)
                recorder.attempt_failed(route, error)
                last = error
                if not (error.retryable and allow_fallbacks):
                    break
                continue
            except GatewayError as error:
                health.release(endpoint_id)
                recorder.attempt_failed(route, error)
                raise
            except asyncio.CancelledError:
                health.release(endpoint_id)
                raise
            health.success(endpoint_id)
            recorder.served_by(route)
            return route, result
        assert last is not None
        raise last
