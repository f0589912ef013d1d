"""A small HTTP/1.1 client for upstream calls: keep-alive connections pooled per origin,
responses parsed by httptools (llhttp, in C), TLS, bodies read whole or as they arrive.

It replaced aiohttp's client, which was a quarter of the event loop's time at 64
connections (bench/profile_gateway) and which, given one large read of a streamed answer,
processed all of it before the first event went on. This one does what the adapters need
and nothing else: POST-style requests with a body, one exchange per connection at a time,
no redirects, cookies, proxies or compression (it asks for none).

Failures are `HttpError`s: `ConnectFailed` (nothing was exchanged), `ConnectionBroken`
(the connection ended or garbled mid-answer). A connection is reused only after a whole
answer that allowed keep-alive; one cancelled or broken mid-way is closed.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

import httptools

IDLE_EXPIRY_S = 15.0  # an idle connection older than this is not reused
MAX_IDLE_PER_ORIGIN = 256
# A streamed answer buffers at most this much while the reader is busy elsewhere.
READ_BUFFER_BYTES = 1 << 20


class HttpError(Exception):
    """The exchange failed below HTTP: no usable answer came back."""


class ConnectFailed(HttpError):
    """No connection could be made, or it closed before any answer."""


class ConnectionBroken(HttpError):
    """The connection ended, or the answer could not be parsed, part-way through."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where a URL points: the pool's key (scheme, host, port) and the request line's path."""

    tls: bool
    host: str
    port: int
    path: str
    host_header: bytes

    @classmethod
    def of(cls, url: str) -> Target:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConnectFailed(f"not an http(s) URL: {url!r}")
        tls = parts.scheme == "https"
        port = parts.port or (443 if tls else 80)
        host = parts.hostname
        shown = f"[{host}]" if ":" in host else host
        if parts.port is not None:
            shown = f"{shown}:{parts.port}"
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return cls(tls, host, port, path, shown.encode("idna"))

    @property
    def origin(self) -> tuple[bool, str, int]:
        return self.tls, self.host, self.port


class _Connection(asyncio.Protocol):
    """One keep-alive connection and the answer it is receiving."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0
        self.reused = False
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self._head: asyncio.Future[None] = self._loop.create_future()
        self._body: list[bytes] = []
        self._buffered = 0
        self._waiter: asyncio.Future[None] | None = None
        self.complete = False
        self._reusable = False  # the answer allowed keep-alive (known at its end)
        self.received_any = False
        self._error: HttpError | None = None
        self._paused = False

    # -- the exchange, for the client ------------------------------------------------------
    def send(self, head: bytes, body: bytes) -> None:
        assert self._transport is not None
        self._reset()
        self._transport.write(head)
        if body:
            self._transport.write(body)

    async def head(self) -> None:
        await self._head

    async def next_body(self) -> bytes | None:
        """The body bytes received since the last call (waiting for some); None at the end."""
        while not self._body:
            if self.complete:
                return None
            if self._error is not None:
                raise self._error
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        data = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        self._body.clear()
        self._buffered = 0
        if self._paused and self._transport is not None:
            self._paused = False
            self._transport.resume_reading()
        return data

    @property
    def keep_alive(self) -> bool:
        return self.complete and self._reusable and not self.closed

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()

    # -- asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.received_any = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionBroken(f"malformed HTTP answer: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.complete:
            return
        if self._head.done() and self._ends_at_close():
            self._finish()  # an answer without length or chunking ends when the connection does
            return
        if not self.received_any:
            self._fail(ConnectFailed(f"the connection closed before an answer ({exc or 'EOF'})"))
        else:
            self._fail(ConnectionBroken(f"the connection closed mid-answer ({exc or 'EOF'})"))

    # -- httptools callbacks ---------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        self.headers[key] = f"{self.headers[key]}, {text}" if key in self.headers else text

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200:  # "100 Continue" and the like: the answer is still to come
            self.headers = {}
            return
        self.status = status
        if not self._head.done():
            self._head.set_result(None)

    def on_body(self, body: bytes) -> None:
        self._body.append(body)
        self._buffered += len(body)
        if self._buffered > READ_BUFFER_BYTES and not self._paused and self._transport:
            self._paused = True
            self._transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self.status:  # not the end of a 1xx
            # Asked now: once the parser has moved past the message it answers False.
            self._reusable = self._parser.should_keep_alive()
            self._finish()

    # -- helpers ---------------------------------------------------------------------------
    def _ends_at_close(self) -> bool:
        return "content-length" not in self.headers and "chunked" not in self.headers.get(
            "transfer-encoding", ""
        )

    def _finish(self) -> None:
        self.complete = True
        self._wake()

    def _fail(self, error: HttpError) -> None:
        if self._error is None and not self.complete:
            self._error = error
            if not self._head.done():
                self._head.set_exception(error)
            self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class Response:
    """An answer whose head has arrived. Read its body whole or piece by piece, then
    `release()` it (always: it returns the connection to the pool or closes it)."""

    def __init__(self, client: HttpClient, target: Target, connection: _Connection) -> None:
        self._client = client
        self._target = target
        self._connection = connection
        self.status = connection.status
        self.headers = connection.headers  # lower-case names

    async def read(self) -> bytes:
        pieces = []
        while (piece := await self._connection.next_body()) is not None:
            pieces.append(piece)
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    async def next_piece(self) -> bytes | None:
        """The body bytes that arrived since the last call, waiting for some; None at the
        end. Safe to cancel (a timeout): nothing received is lost."""
        return await self._connection.next_body()

    def release(self) -> None:
        self._client._give_back(self._target, self._connection)


class HttpClient:
    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        """`tls`: how to verify https servers; by default the system's trusted CAs."""
        self._idle: dict[tuple[bool, str, int], list[_Connection]] = {}
        self._targets: dict[str, Target] = {}
        self._tls = tls

    def target(self, url: str) -> Target:
        found = self._targets.get(url)
        if found is None:
            found = Target.of(url)
            if len(self._targets) < 1024:  # the adapters' URLs: a handful
                self._targets[url] = found
        return found

    async def post(
        self,
        url: str,
        headers: Iterable[tuple[str, str]],
        body: bytes,
        *,
        connect_timeout_s: float,
    ) -> Response:
        """Send the request and wait for the answer's head. The caller bounds the whole
        exchange (asyncio.timeout); whatever cancels it closes the connection."""
        target = self.target(url)
        head = _request_head(target, headers, len(body))
        while True:
            connection = await self._checkout(target, connect_timeout_s)
            try:
                connection.send(head, body)
                await connection.head()
            except ConnectFailed:
                connection.close()
                # A pooled connection the server had just closed: once more on a new one.
                if connection.reused:
                    continue
                raise
            except BaseException:
                connection.close()
                raise
            return Response(self, target, connection)

    async def _checkout(self, target: Target, connect_timeout_s: float) -> _Connection:
        idle = self._idle.get(target.origin)
        now = time.monotonic()
        while idle:
            connection = idle.pop()
            if not connection.closed and now - connection.idle_since < IDLE_EXPIRY_S:
                connection.reused = True
                return connection
            connection.close()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(connect_timeout_s):
                _, protocol = await loop.create_connection(
                    _Connection,
                    target.host,
                    target.port,
                    ssl=self._tls_context() if target.tls else None,
                    server_hostname=target.host if target.tls else None,
                )
        except TimeoutError as exc:
            raise ConnectFailed(
                f"no connection to {target.host}:{target.port} within {connect_timeout_s:g} s"
            ) from exc
        except OSError as exc:  # refused, unreachable, DNS, TLS handshake
            raise ConnectFailed(f"cannot connect to {target.host}:{target.port}: {exc}") from exc
        return protocol

    def _give_back(self, target: Target, connection: _Connection) -> None:
        if not connection.keep_alive:
            connection.close()
            return
        idle = self._idle.setdefault(target.origin, [])
        if len(idle) >= MAX_IDLE_PER_ORIGIN:
            connection.close()
            return
        connection.idle_since = time.monotonic()
        idle.append(connection)

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls

    async def close(self) -> None:
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()


def _request_head(target: Target, headers: Iterable[tuple[str, str]], length: int) -> bytes:
    lines = [b"POST ", target.path.encode(), b" HTTP/1.1\r\nHost: ", target.host_header]
    for name, value in headers:
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
            raise ConnectFailed(f"the header {name!r} holds a line break")
        try:
            lines += [b"\r\n", name.encode("latin-1"), b": ", value.encode("latin-1")]
        except UnicodeEncodeError as exc:
            raise ConnectFailed(f"the header {name!r} is not Latin-1 text") from exc
    lines.append(f"\r\nContent-Length: {length}\r\n\r\n".encode())
    return b"".join(lines)
