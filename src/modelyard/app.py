"""Build the ASGI application: routes, error rendering, and the lifespan that owns state."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from modelyard.api.account import AccountApi
from modelyard.api.admin import AdminApi
from modelyard.api.chat import ChatCompletions
from modelyard.api.embeddings import EmbeddingsApi
from modelyard.api.http import send_error
from modelyard.api.messages import Messages
from modelyard.api.messages import send_error as send_messages_error
from modelyard.api.models import ModelsApi
from modelyard.api.openapi import openapi_document
from modelyard.api.responses import Responses
from modelyard.config import Settings
from modelyard.errors import GatewayError, InvalidRequest, NotFound, ServerError
from modelyard.gateway import Gateway
from modelyard.web import WebPages

log = logging.getLogger(__name__)
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _error_response(error: GatewayError) -> Response:
    return Response(
        error.to_json(),
        status_code=error.status,
        media_type="application/json",
        headers=error.headers,
    )


async def _on_gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    return _error_response(exc)


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return _error_response(NotFound(f"No route {request.method} {request.url.path}."))
    if exc.status_code == 405:
        error = InvalidRequest(f"Method {request.method} is not allowed on {request.url.path}.")
        return Response(error.to_json(), status_code=405, media_type="application/json")
    error = InvalidRequest(str(exc.detail))
    return Response(error.to_json(), status_code=exc.status_code, media_type="application/json")


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return _error_response(ServerError("Internal server error."))


class HotPaths:
    """The inference front doors go straight to their handlers; everything else to Starlette.

    Starlette's mounts, route matching and middleware were 11% of the event loop's time
    at 64 connections (bench/profile_gateway), for routes that need none of them: the
    handlers are raw ASGI and render their own errors. What they do not foresee becomes a
    500 in the front door's own error shape.
    """

    def __init__(self, doors: dict[str, FrontDoor], rest: ASGIApp) -> None:
        self._doors = doors
        self._rest = rest

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        door = self._doors.get(scope["path"]) if scope["type"] == "http" else None
        if door is None or scope["method"] != "POST":
            await self._rest(scope, receive, send)
            return
        try:
            await door.handler(scope, receive, send)
        except Exception:
            log.exception("unhandled error on POST %s", scope["path"])
            # Refused by the server if the response had started; it then closes the connection.
            with contextlib.suppress(RuntimeError):
                await door.send_error(send, ServerError("Internal server error."))


@dataclass(frozen=True, slots=True)
class FrontDoor:
    handler: ASGIApp
    send_error: Callable[[Send, GatewayError], Awaitable[None]]


def _front_doors(
    chat: ChatCompletions, messages: Messages, responses: Responses, embeddings: EmbeddingsApi
) -> dict[str, FrontDoor]:
    doors: dict[str, FrontDoor] = {}
    for root in ("/v1", "/api/v1"):
        doors[f"{root}/embeddings"] = FrontDoor(embeddings, send_error)
        doors[f"{root}/chat/completions"] = FrontDoor(chat, send_error)
        doors[f"{root}/responses"] = FrontDoor(responses, send_error)
        doors[f"{root}/messages"] = FrontDoor(messages, send_messages_error)
        doors[f"{root}/messages/count_tokens"] = FrontDoor(messages, send_messages_error)
    return doors


def _api_routes(
    gateway: Gateway,
    chat: ChatCompletions,
    messages: Messages,
    responses: Responses,
    embeddings: EmbeddingsApi,
) -> list[BaseRoute]:
    models = ModelsApi(gateway)
    account = AccountApi(gateway)
    return [
        Route("/chat/completions", chat, methods=["POST"]),
        Route("/messages", messages, methods=["POST"]),
        Route("/messages/count_tokens", messages, methods=["POST"]),
        Route("/responses", responses, methods=["POST"]),
        Route("/embeddings", embeddings, methods=["POST"]),
        Route("/responses/{id}", responses.retrieve, methods=["GET"]),
        Route("/responses/{id}", responses.delete, methods=["DELETE"]),
        Route("/generation", account.generation, methods=["GET"]),
        Route("/key", account.key, methods=["GET"]),
        Route("/models", models.list_models, methods=["GET"]),
        Route("/models/count", models.count_models, methods=["GET"]),
        Route("/model/{author}/{slug}", models.get_model_data, methods=["GET"]),
        Route("/models/{author}/{slug}/endpoints", models.list_endpoints, methods=["GET"]),
        Route("/models/{author}/{slug}", models.get_model, methods=["GET"]),
    ]


def build_app(
    settings: Settings,
    gateway: Gateway | None = None,
    on_started: Callable[[], None] | None = None,
) -> HotPaths:
    gw = gateway or Gateway.create(settings)
    openapi = orjson.dumps(openapi_document(settings.base_url))

    async def health(request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    async def metrics(request: Request) -> Response:
        return Response(gw.metrics.render(), media_type="text/plain; version=0.0.4")

    async def openapi_json(request: Request) -> Response:
        return Response(openapi, media_type="application/json")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await gw.start()
        # Everything built at start-up lives as long as the process: move it out of the
        # collector's reach, so full collections stop re-walking it (60-85 ms pauses under
        # load, measured by bench/gc_pauses.py, down to a few ms).
        gc.collect()
        gc.freeze()
        # The model pages' daily roll-ups, summed in the background (a big ledger takes
        # seconds) so the first page view does not wait for them.
        warm = asyncio.create_task(gw.stats.warm(list(gw.catalog.models)))
        if on_started is not None:
            on_started()
        try:
            yield
        finally:
            warm.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await warm
            await gw.close()

    chat = ChatCompletions(gw)
    messages = Messages(gw)
    responses = Responses(gw)
    embeddings = EmbeddingsApi(gw)
    api = _api_routes(gw, chat, messages, responses, embeddings)
    app = Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/openapi.json", openapi_json, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
            Mount("/v1", routes=api),
            Mount("/api/v1", routes=api),
            Mount("/admin", routes=AdminApi(gw, chat, embeddings).routes()),
            *WebPages(gw).routes(),
        ],
        exception_handlers={
            GatewayError: _on_gateway_error,
            HTTPException: _on_http_error,
            Exception: _on_unexpected,
        },
        lifespan=lifespan,
    )
    return HotPaths(_front_doors(chat, messages, responses, embeddings), app)


def create_app() -> HotPaths:
    """The app factory of `modelyard serve --workers N`: each worker process builds its own
    gateway (with its own embedded model) from the MODELYARD_* environment."""
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    return build_app(Settings.from_env())
