"""A minimal, fast HTTP/1.1 client: one keep-alive connection per protocol object, one
request at a time, responses parsed by httptools. It records when the first streamed
content chunk arrives and counts content chunks, which is all the load generator needs."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import cast

import httptools

from bench.upstream import CONTENT

# How a content chunk looks on the wire, from the upstream and from the gateway (orjson).
CONTENT_MARKER = b'"content":"' + CONTENT.encode() + b'"'
# The same chunk as an Anthropic Messages stream carries it (a text_delta).
TEXT_DELTA_MARKER = b'"text":"' + CONTENT.encode() + b'"'


@dataclass(frozen=True, slots=True)
class Target:
    host: str
    port: int
    payload: bytes  # the whole request, head and body
    marker: bytes = CONTENT_MARKER  # what one content chunk of the answer contains


def post_request(
    host: str,
    port: int,
    path: str,
    body: bytes,
    headers: dict[str, str] | None = None,
    marker: bytes = CONTENT_MARKER,
) -> Target:
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *(f"{name}: {value}" for name, value in (headers or {}).items()),
    ]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode()
    return Target(host, port, head + body, marker)


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    first_content_at: float | None  # perf_counter() when the first content chunk arrived
    done_at: float
    content_chunks: int


class Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[Reply] | None = None
        self._status = 0
        self._first: float | None = None
        self._chunks = 0
        self._tail = b""  # the end of the last body piece: a marker may straddle pieces
        self._marker = CONTENT_MARKER
        self.closed = False

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(cls, host, port)
        return protocol

    async def request(self, payload: bytes, marker: bytes = CONTENT_MARKER) -> Reply:
        assert self._transport is not None and self._waiter is None
        if self.closed:
            raise ConnectionError("connection closed")
        self._waiter = asyncio.get_running_loop().create_future()
        self._status, self._first, self._chunks, self._tail = 0, None, 0, b""
        self._marker = marker
        self._transport.write(payload)
        try:
            return await self._waiter
        finally:
            self._waiter = None

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    # asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(exc or ConnectionError("connection closed by the server"))

    # httptools callbacks
    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        marker = self._marker
        piece = self._tail + body
        found = piece.count(marker)
        if found:
            if self._first is None:
                self._first = time.perf_counter()
            self._chunks += found
        self._tail = piece[-(len(marker) - 1) :]

    def on_message_complete(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            reply = Reply(self._status, self._first, time.perf_counter(), self._chunks)
            waiter.set_result(reply)
        if not self._parser.should_keep_alive():
            self.close()

    def _fail(self, exc: BaseException) -> None:
        self.closed = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc)
        self.close()
