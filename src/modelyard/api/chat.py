"""POST /v1/chat/completions: the OpenAI Chat Completions front door.

It parses the wire format into the internal request, hands it to the request service and
renders what comes back as JSON or SSE. A raw ASGI handler, because it is the hot path and
needs two things Starlette's request helpers hide: a body read with a size cap, and a
watch on the connection so that a client that goes away cancels its generation.
"""

from __future__ import annotations

import time

import msgspec
from starlette.types import Receive, Scope, Send

from modelyard.access.caller import Caller
from modelyard.api.disconnect import cancel_on_disconnect
from modelyard.api.door import caller_and_body
from modelyard.api.http import ClientGone, header, send_error, send_json
from modelyard.errors import GatewayError
from modelyard.gateway import Gateway
from modelyard.providers.base import NativeRequest
from modelyard.schema.chat import ChatRequest, parse_chat_request
from modelyard.schema.image_urls import check_image_urls
from modelyard.schema.response import DONE, KEEPALIVE, ChunkWriter, completion_body
from modelyard.service import Billed, CallInfo, GenerationCall

SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


def call_info(
    scope: Scope,
    api: str,
    *,
    native: NativeRequest | None = None,
    clamp_output: bool = False,
    model_type: str = "chat",
) -> CallInfo:
    """The attribution and session headers every front door passes on."""
    return CallInfo(
        api=api,
        http_referer=header(scope, b"http-referer") or header(scope, b"referer"),
        x_title=header(scope, b"x-title"),
        session_header=header(scope, b"x-session-id"),
        native=native,
        clamp_output=clamp_output,
        model_type=model_type,
    )


class ChatCompletions:
    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gateway = self._gateway
        try:
            caller, body = await caller_and_body(gateway, scope, receive)
            request = parse_chat_request(body)
        except ClientGone:
            return
        except GatewayError as error:
            await send_error(send, error)
            return
        await self.serve(scope, receive, send, caller, request)

    async def serve(
        self, scope: Scope, receive: Receive, send: Send, caller: Caller, request: ChatRequest
    ) -> None:
        """Answer a parsed request for an authenticated caller (also the admin's models:call)."""
        gateway = self._gateway
        try:
            await check_image_urls(request, gateway.image_urls)
            if (header(scope, b"x-prompt-caching") or "").strip().lower() == "false":
                request = msgspec.structs.replace(request, prompt_caching=False)
            call = await gateway.service.begin(
                caller, request, call_info(scope, "chat.completions")
            )
        except GatewayError as error:
            await send_error(send, error)
            return
        respond = _stream if request.stream else _complete
        async with call:
            if await cancel_on_disconnect(receive, respond(call, send)):
                call.client_left()


async def _complete(call: GenerationCall, send: Send) -> None:
    try:
        route, result, cost = await call.complete()
    except GatewayError as error:
        await send_error(send, error)
        return
    body = completion_body(
        call.generation_id,
        int(time.time()),
        route.model.id,
        route.endpoint.provider.id,
        result,
        cost,
    )
    await send_json(send, 200, body, call.headers())


async def _stream(call: GenerationCall, send: Send) -> None:
    try:
        answer = await call.stream()
    except GatewayError as error:
        await send_error(send, error)
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [*SSE_HEADERS, *call.headers()],
        }
    )
    route = answer.route
    writer = ChunkWriter(
        call.generation_id, int(time.time()), route.model.id, route.endpoint.provider.id
    )

    async def body(chunk: bytes) -> None:
        await send({"type": "http.response.body", "body": chunk, "more_body": True})

    await answer.relay(_ChunkRenderer(writer), body)
    await send({"type": "http.response.body", "body": DONE, "more_body": False})


class _ChunkRenderer:
    """A streamed answer as chat.completion.chunk frames."""

    __slots__ = ("_writer", "delta")

    def __init__(self, writer: ChunkWriter) -> None:
        self._writer = writer
        self.delta = writer.delta  # the hot path: no call of our own in between

    def finish(self, billed: Billed) -> bytes:
        writer = self._writer
        ending = writer.finish(billed.finish_reason, billed.native_finish_reason)
        return ending + writer.usage(billed.usage, billed.cost)

    def quiet(self) -> bytes:
        return KEEPALIVE

    def error(self, error: GatewayError) -> bytes:
        return self._writer.error(error)
