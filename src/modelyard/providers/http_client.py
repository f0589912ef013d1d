"""A small HTTP/1.1 client for upstream calls: keep-alive connections pooled per origin,
responses parsed by httptools (llhttp, in C), TLS, bodies read whole or as they arrive.

It replaced aiohttp's client, which was a quarter of the event loop's time at 64
connections (bench/profile_gateway) and which, given one large read of a streamed answer,
processed all of it before the first event went on. This one does what the adapters need
and what aiohttp does for them: POST requests with a body, one exchange per connection at
a time, at most `max_connections_per_origin` open per origin (callers queue past it),
Happy Eyeballs (RFC 8305, aiohappyeyeballs) and egress proxies from the environment
(`http_proxy`); no redirects, cookies or compression (it asks for none).

A request is sent once. It goes out on a new connection unless an idle one passes the
checks just before the write (open, not expired, no EOF or stray bytes waiting); once
any of its bytes may have reached the upstream it is never re-sent (RFC 9112 §9.3.1: a
POST is a generation someone pays for), whatever happens next: the failure goes to the
caller, whose policy may try another endpoint.

Failures are `HttpError`s: `ConnectFailed` (no answer began), `ConnectionBroken` (the
connection ended or garbled mid-answer). A connection is reused only after a whole answer
that allowed keep-alive; one cancelled or broken mid-way is closed.
"""

from __future__ import annotations

import asyncio
import select
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

import aiohappyeyeballs
import httptools

from modelyard.providers.http_pool import OriginPool
from modelyard.providers.http_proxy import Proxy, ProxyChoice, ProxyError, TunnelHandshake

IDLE_EXPIRY_S = 15.0  # an idle connection older than this is not reused
MAX_CONNECTIONS_PER_ORIGIN = 100
MAX_IDLE_PER_ORIGIN = 100
# RFC 8305's recommended wait before racing the next address (of the other family).
HAPPY_EYEBALLS_DELAY_S = 0.25
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

    @property
    def absolute(self) -> str:
        """The request target in absolute form, as a proxy is asked for a plain origin."""
        return f"http://{self.host_header.decode()}{self.path}"


# (family, type, proto, canonname, sockaddr), as loop.getaddrinfo returns them
AddressInfo = tuple[Any, ...]
Resolver = Callable[[str, int], Awaitable[Sequence[AddressInfo]]]


async def system_resolver(host: str, port: int) -> Sequence[AddressInfo]:
    loop = asyncio.get_running_loop()
    return await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)


class _Connection(asyncio.Protocol):
    """One keep-alive connection and the answer it is receiving."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0
        self._in_exchange = False
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
        self._in_exchange = True
        if len(body) < 16384:  # one write, one packet
            self._transport.write(head + body)
        else:
            self._transport.write(head)
            self._transport.write(body)

    def rest(self) -> None:
        """The exchange ended cleanly: the connection waits, idle, for the next one."""
        self._in_exchange = False
        self.idle_since = time.monotonic()

    def usable(self) -> bool:
        """Whether a request may go out on this idle connection: it is open and young,
        and the upstream has sent nothing since the last answer. What arrives on an idle
        connection (EOF, a reset, stray bytes) may not have been processed by the event
        loop yet, so the socket itself is polled, as urllib3 does."""
        transport = self._transport
        if self.closed or transport is None or transport.is_closing():
            return False
        if time.monotonic() - self.idle_since >= IDLE_EXPIRY_S:
            return False
        sock = transport.get_extra_info("socket")
        if sock is not None:
            poller = select.poll()
            poller.register(sock.fileno(), select.POLLIN | select.POLLPRI)
            if poller.poll(0):
                return False
        return True

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
        if not self._in_exchange:  # unasked for: the connection is out of step
            self.close()
            return
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
            # The request may have reached the upstream: it is not sent again (see above).
            why = f"the connection closed before an answer ({exc or 'EOF'}); not re-sent"
            self._fail(ConnectFailed(why))
        else:
            self._fail(ConnectionBroken(f"the connection closed mid-answer ({exc or 'EOF'})"))

    # -- httptools callbacks ---------------------------------------------------------------
    # Once the answer is complete, whatever follows is a second answer to one request: the
    # connection is out of step, so it is closed (never reused) and the rest ignored.
    def on_message_begin(self) -> None:
        if self.complete:
            self.close()

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.complete:
            return
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        self.headers[key] = f"{self.headers[key]}, {text}" if key in self.headers else text

    def on_headers_complete(self) -> None:
        if self.complete:
            return
        status = self._parser.get_status_code()
        if 100 <= status < 200:  # "100 Continue" and the like: the answer is still to come
            self.headers = {}
            return
        self.status = status
        if not self._head.done():
            self._head.set_result(None)

    def on_body(self, body: bytes) -> None:
        if self.complete:
            return
        self._body.append(body)
        self._buffered += len(body)
        if self._buffered > READ_BUFFER_BYTES and not self._paused and self._transport:
            self._paused = True
            self._transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self.status and not self.complete:  # not the end of a 1xx, nor of a stray answer
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
        self._released = False

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
        if not self._released:
            self._released = True
            self._client._give_back(self._target, self._connection)


class HttpClient:
    def __init__(
        self,
        tls: ssl.SSLContext | None = None,
        *,
        max_connections_per_origin: int = MAX_CONNECTIONS_PER_ORIGIN,
        resolver: Resolver = system_resolver,
    ) -> None:
        """`tls`: how to verify https servers; by default the system's trusted CAs.
        Proxies come from the environment as it is now (HTTPS_PROXY, NO_PROXY, ...)."""
        self._pools: dict[tuple[bool, str, int], OriginPool[_Connection]] = {}
        self._targets: dict[str, Target] = {}
        self._tls = tls
        self._max_open = max_connections_per_origin
        self._resolver = resolver
        self._proxies = ProxyChoice()

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
        """Send the request once and wait for the answer's head. `connect_timeout_s`
        bounds the wait for a place in the pool and the connect together (as aiohttp's
        connect timeout does); the caller bounds the whole exchange (asyncio.timeout),
        and whatever cancels it closes the connection."""
        target = self.target(url)
        proxy = self._proxy_for(target)
        # A plain origin through a proxy: the proxy forwards the request (absolute form).
        head = _request_head(target, headers, len(body), proxy if not target.tls else None)
        pool = self._pool(target)
        connection = await self._checkout(pool, target, proxy, connect_timeout_s)
        try:
            connection.send(head, body)
            await connection.head()
        except BaseException:
            pool.discard(connection)
            raise
        return Response(self, target, connection)

    def _pool(self, target: Target) -> OriginPool[_Connection]:
        pool = self._pools.get(target.origin)
        if pool is None:
            pool = self._pools[target.origin] = OriginPool(self._max_open, MAX_IDLE_PER_ORIGIN)
        return pool

    def _proxy_for(self, target: Target) -> Proxy | None:
        try:
            return self._proxies.proxy_for(target.tls, target.host, target.port)
        except ProxyError as exc:
            raise ConnectFailed(str(exc)) from exc

    async def _checkout(
        self,
        pool: OriginPool[_Connection],
        target: Target,
        proxy: Proxy | None,
        connect_timeout_s: float,
    ) -> _Connection:
        where = f"{target.host}:{target.port}"
        opened = False
        try:
            async with asyncio.timeout(connect_timeout_s):
                connection = await pool.acquire()
                if connection is not None:
                    return connection
                opened = True
                return await self._open(target, proxy)
        except TimeoutError as exc:
            if opened:
                pool.discard(None)
                raise ConnectFailed(
                    f"no connection to {where} within {connect_timeout_s:g} s"
                ) from exc
            raise ConnectFailed(
                f"no free connection to {where} within {connect_timeout_s:g} s: all "
                f"{pool.max_open} allowed are busy"
            ) from exc
        except BaseException:
            if opened:
                pool.discard(None)
            raise

    async def _open(self, target: Target, proxy: Proxy | None) -> _Connection:
        loop = asyncio.get_running_loop()
        tls = self._tls_context() if target.tls else None
        hop = f"{target.host}:{target.port}" + (
            f" through the proxy {proxy.shown}" if proxy else ""
        )
        try:
            if proxy is None:
                sock = await self._connect(target.host, target.port)
                _, connection = await loop.create_connection(
                    _Connection, sock=sock, ssl=tls, server_hostname=target.host if tls else None
                )
                return connection
            sock = await self._connect(proxy.host, proxy.port)
            if tls is None:  # a plain origin: requests in absolute form to the proxy
                _, connection = await loop.create_connection(_Connection, sock=sock)
                return connection
            return await self._tunnel(sock, proxy, target, tls)
        except ProxyError as exc:
            raise ConnectFailed(str(exc)) from exc
        except OSError as exc:  # refused, unreachable, DNS, TLS handshake
            raise ConnectFailed(f"cannot connect to {hop}: {exc}") from exc

    async def _connect(self, host: str, port: int) -> socket.socket:
        """A connected socket: the host's addresses raced as RFC 8305 says (families
        interleaved, the next attempt started after 250 ms unless the last one failed)."""
        addresses = await self._resolver(host, port)
        if not addresses:
            raise OSError(f"no address for {host}")
        return await aiohappyeyeballs.start_connection(
            addresses, happy_eyeballs_delay=HAPPY_EYEBALLS_DELAY_S, interleave=1
        )

    async def _tunnel(
        self, sock: socket.socket, proxy: Proxy, target: Target, tls: ssl.SSLContext
    ) -> _Connection:
        """CONNECT through the proxy, then TLS with the origin inside the tunnel."""
        loop = asyncio.get_running_loop()
        transport, handshake = await loop.create_connection(
            lambda: TunnelHandshake(proxy), sock=sock
        )
        try:
            transport.write(proxy.connect_request(target.host, target.port))
            await handshake.answer
            inner = await loop.start_tls(transport, handshake, tls, server_hostname=target.host)
        except BaseException:
            transport.close()
            raise
        assert inner is not None
        connection = _Connection()
        inner.set_protocol(connection)
        connection.connection_made(inner)
        return connection

    def _give_back(self, target: Target, connection: _Connection) -> None:
        pool = self._pool(target)
        if connection.keep_alive:
            connection.rest()
            pool.release(connection)
        else:
            pool.discard(connection)

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls

    async def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()


def _request_head(
    target: Target, headers: Iterable[tuple[str, str]], length: int, forward: Proxy | None
) -> bytes:
    path = target.absolute if forward is not None else target.path
    lines = [b"POST ", path.encode(), b" HTTP/1.1\r\nHost: ", target.host_header]
    if forward is not None and forward.authorization is not None:
        lines += [b"\r\nProxy-Authorization: ", forward.authorization]
    for name, value in headers:
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
            raise ConnectFailed(f"the header {name!r} holds a line break")
        try:
            lines += [b"\r\n", name.encode("latin-1"), b": ", value.encode("latin-1")]
        except UnicodeEncodeError as exc:
            raise ConnectFailed(f"the header {name!r} is not Latin-1 text") from exc
    lines.append(f"\r\nContent-Length: {length}\r\n\r\n".encode())
    return b"".join(lines)
