"""POST /v1/messages (and /v1/messages/count_tokens): the Anthropic Messages front door.

It parses Anthropic's wire format into the internal request (schema/messages.py), hands it
to the request service with the body as sent (an `anthropic` upstream gets that, not a
translation of a translation), and renders answers, streams and errors in Anthropic's
shapes (schema/messages_render.py). A route that answered natively has its own events
relayed as they came.
"""

from __future__ import annotations

import orjson
from starlette.types import Receive, Scope, Send

from modelyard.access.caller import Caller
from modelyard.api.chat import SSE_HEADERS, call_info
from modelyard.api.disconnect import cancel_on_disconnect
from modelyard.api.door import caller_and_body
from modelyard.api.http import ClientGone, header, send_json
from modelyard.errors import AuthError, GatewayError
from modelyard.gateway import Gateway
from modelyard.providers.anthropic_native import DIALECT, FORWARDED_HEADERS
from modelyard.providers.base import Delta, NativeRequest
from modelyard.schema.image_urls import check_image_urls
from modelyard.schema.messages import MessagesCall, parse_messages_request
from modelyard.schema.messages_render import (
    MessagesStreamWriter,
    error_body,
    error_type_and_status,
    message_body,
)
from modelyard.service import Billed, GenerationCall

API = "messages"
TOKEN_COUNT_HEADER = b"x-modelyard-token-count"


class Messages:
    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        counting = scope["path"].endswith("/count_tokens")
        gateway = self._gateway
        try:
            caller, body = await caller_and_body(gateway, scope, receive, _authorization(scope))
            parsed = parse_messages_request(body, count_tokens=counting)
            await check_image_urls(parsed.chat, gateway.image_urls)
            native = NativeRequest(DIALECT, parsed.native, _forwarded(scope))
            if counting:
                await self._count(send, caller, parsed, native)
                return
            info = call_info(scope, API, native=native, clamp_output=True)
            call = await gateway.service.begin(caller, parsed.chat, info)
        except ClientGone:
            return
        except GatewayError as error:
            await send_error(send, error)
            return
        respond = _stream if parsed.stream else _complete
        async with call:
            if await cancel_on_disconnect(receive, respond(call, send)):
                call.client_left()

    async def _count(
        self, send: Send, caller: Caller, parsed: MessagesCall, native: NativeRequest
    ) -> None:
        count, source = await self._gateway.service.count_tokens(caller, parsed.chat, native)
        body = orjson.dumps({"input_tokens": count})
        await send_json(send, 200, body, [(TOKEN_COUNT_HEADER, source.encode())])


def _authorization(scope: Scope) -> str:
    """The key from x-api-key (the anthropic SDK's way) or Authorization: Bearer."""
    key = header(scope, b"x-api-key")
    if key:
        return f"Bearer {key.strip()}"
    authorization = header(scope, b"authorization")
    if not authorization:
        raise AuthError("Missing API key. Send it in the x-api-key header.")
    return authorization


def _forwarded(scope: Scope) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name in FORWARDED_HEADERS:
        value = header(scope, name.encode())
        if value:
            headers[name] = value
    return headers


async def send_error(send: Send, error: GatewayError) -> None:
    _, status = error_type_and_status(error)
    headers = [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
    await send_json(send, status, error_body(error), headers)


async def _complete(call: GenerationCall, send: Send) -> None:
    try:
        route, result, _ = await call.complete()
    except GatewayError as error:
        await send_error(send, error)
        return
    if isinstance(result.native, dict):  # the upstream's own message, as it came
        body = orjson.dumps(result.native)
    else:
        body = message_body(
            call.generation_id,
            route.model.id,
            result,
            result.usage,
            stop_sequence=result.stop_sequence,
        )
    await send_json(send, 200, body, call.headers())


async def _stream(call: GenerationCall, send: Send) -> None:
    try:
        answer = await call.stream()
    except GatewayError as error:
        await send_error(send, error)
        return
    await send(
        {"type": "http.response.start", "status": 200, "headers": [*SSE_HEADERS, *call.headers()]}
    )
    writer = MessagesStreamWriter(call.generation_id, answer.route.model.id)

    async def body(chunk: bytes) -> None:
        await send({"type": "http.response.body", "body": chunk, "more_body": True})

    await answer.relay(_EventRenderer(writer), body)
    await send({"type": "http.response.body", "body": b"", "more_body": False})


class _EventRenderer:
    """A streamed answer as Anthropic's events; a native route's own events as they came."""

    __slots__ = ("_writer",)

    def __init__(self, writer: MessagesStreamWriter) -> None:
        self._writer = writer

    def delta(self, delta: Delta) -> bytes:
        # The writer opens the message (message_start) before its first piece.
        return delta.native if delta.native is not None else self._writer.delta(delta)

    def finish(self, billed: Billed) -> bytes:
        if billed.native is not None:
            return billed.native
        return self._writer.finish(billed, stop_sequence=billed.stop_sequence)

    def quiet(self) -> bytes:
        return self._writer.ping()

    def error(self, error: GatewayError) -> bytes:
        return self._writer.error(error)
