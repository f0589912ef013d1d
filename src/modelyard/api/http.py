"""Small HTTP helpers: for the hot raw-ASGI endpoints, read a bounded body and send JSON;
for the Starlette ones, one JSON `Response`."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from modelyard.errors import GatewayError, InvalidRequest, PayloadTooLarge

JSON_HEADERS = [(b"content-type", b"application/json")]


class ClientGone(GatewayError):
    """The client disconnected before the request body was read.

    A GatewayError so that a handler which lets it through renders an answer that nobody
    reads, instead of a traceback in the log."""

    status = 400
    error_type = "invalid_request_error"

    def __init__(self) -> None:
        super().__init__("The client disconnected before the request body was read.")


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    declared = header(scope, b"content-length")
    if declared is not None:
        if not declared.isdigit():
            raise InvalidRequest("The Content-Length header is not a number.")
        if int(declared) > limit:
            raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The request body is larger than the {limit}-byte limit.")


async def send_json(
    send: Send,
    status: int,
    body: bytes,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*JSON_HEADERS, (b"content-length", str(len(body)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def send_error(send: Send, error: GatewayError) -> None:
    headers = [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
    await send_json(send, error.status, error.to_json(), headers)


def json_response(body: Any, status: int = 200) -> Response:
    """A JSON answer; Decimal amounts (money from the store) become numbers."""
    return Response(
        orjson.dumps(body, default=_encode), status_code=status, media_type="application/json"
    )


def _encode(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(type(value).__name__)
