"""A small asyncio Redis client for the rate limiter: one connection, commands pipelined on
it in order, replies parsed by hiredis (C).

It replaced redis-py's asyncio client, which with the limiter in Redis was over half of the
event loop's time at 64 connections (bench/profile_gateway --redis): a pooled connection,
a lock, a retry wrapper and Python-level parsing per command, two commands per request.
The limiter needs Lua scripts and nothing else, so this is what it has: `evalsha` (loading
the script when Redis does not know it yet) over any number of concurrent callers sharing
one connection.

URLs as redis-py reads them: redis://[[user]:password@]host[:port][/db], and rediss:// for
TLS, verified against the system's CAs unless `?ssl_ca_certs=<file>` names others or
`?ssl_cert_reqs=none` turns verification off. Each (re)connect sends AUTH (ACL user and
password, or the password alone) before SELECT; refused credentials are a RedisError that
says so. A Redis that cannot be reached is tried again after an exponential backoff with
jitter (50 ms doubling to 2 s); until then calls fail at once, and the limiter's
fail-open or fail-closed policy decides. The backoff ends with the first reply.

Commands issued in one turn of the event loop leave in one write (with 64 requests in
flight, a few writes instead of 128). A command that gets no reply within `timeout_s`
closes the connection (later replies could no longer be matched to their callers); the
next command opens a new one.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import ssl
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

import hiredis

BACKOFF_FIRST_S = 0.05
BACKOFF_MAX_S = 2.0
CERT_REQS = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}


class RedisError(Exception):
    """Redis could not be reached, did not answer in time, or answered with an error."""


class RedisReplyError(RedisError):
    """Redis answered the command with an error."""


@dataclass(frozen=True)
class Script:
    text: str

    @property
    def sha(self) -> str:
        return hashlib.sha1(self.text.encode()).hexdigest()


@dataclass(frozen=True)
class _Address:
    host: str
    port: int
    tls: ssl.SSLContext | None
    db: int
    username: str | None
    password: str | None

    @classmethod
    def of(cls, url: str) -> _Address:
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss"):
            raise ValueError(f"not a redis:// or rediss:// URL: {_redacted(url)!r}")
        path = parts.path.strip("/")
        if path and not path.isdigit():
            raise ValueError(f"the Redis URL's database is not a number: {path!r}")
        query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 6379,
            tls=_tls_context(query) if parts.scheme == "rediss" else None,
            db=int(path) if path else 0,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )

    @property
    def auth(self) -> tuple[str, ...] | None:
        if self.password is None:
            return None
        return ("AUTH", self.username, self.password) if self.username else ("AUTH", self.password)


def _tls_context(query: dict[str, str]) -> ssl.SSLContext:
    """rediss:// options by redis-py's names: ssl_cert_reqs=none|optional|required,
    ssl_ca_certs=<PEM file>; by default the server is verified like any TLS server."""
    requirement = query.get("ssl_cert_reqs", "required").lower()
    if requirement not in CERT_REQS:
        raise ValueError(
            f"ssl_cert_reqs must be one of {', '.join(CERT_REQS)}, not {requirement!r}"
        )
    try:
        context = ssl.create_default_context(cafile=query.get("ssl_ca_certs"))
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"ssl_ca_certs={query['ssl_ca_certs']!r} cannot be read: {exc}") from exc
    if CERT_REQS[requirement] != ssl.CERT_REQUIRED:
        context.check_hostname = False
        context.verify_mode = CERT_REQS[requirement]
    return context


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)


def encode(args: tuple[str | int | bytes, ...]) -> bytes:
    """A command in RESP: an array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        out += [b"$%d\r\n" % len(data), data, b"\r\n"]
    return b"".join(out)


class _Connection(asyncio.Protocol):
    """Commands go out together: those issued in one turn of the event loop leave in one
    write. One timer watches the oldest unanswered command, not one timer per command."""

    def __init__(self, timeout_s: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._timeout_s = timeout_s
        self.answered = False  # a reply has come on this connection
        # Set by the client once the connection is its own: whether Redis is healthy.
        self.on_first_reply: Callable[[], None] | None = None
        self.on_silent_end: Callable[[str], None] | None = None
        self._reader = hiredis.Reader()
        self._transport: asyncio.Transport | None = None
        self._outgoing: list[bytes] = []
        self._watchdog: asyncio.TimerHandle | None = None
        self.waiting: deque[tuple[float, asyncio.Future[Any]]] = deque()  # (deadline, reply)
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def send(self, command: bytes) -> asyncio.Future[Any]:
        reply: asyncio.Future[Any] = self._loop.create_future()
        if self.closed:
            reply.set_exception(RedisError("the connection to Redis is closed"))
            return reply
        deadline = self._loop.time() + self._timeout_s
        self.waiting.append((deadline, reply))
        if not self._outgoing:
            self._loop.call_soon(self._flush)
        self._outgoing.append(command)
        if self._watchdog is None:
            self._watchdog = self._loop.call_at(deadline, self._check_replies)
        return reply

    def _flush(self) -> None:
        if self._transport is not None and not self.closed:
            self._transport.write(b"".join(self._outgoing))
        self._outgoing.clear()

    def _check_replies(self) -> None:
        self._watchdog = None
        if not self.waiting:
            return
        oldest = self.waiting[0][0]
        if oldest <= self._loop.time():
            # Replies still to come could no longer be matched to their callers.
            self._fail(RedisError(f"Redis did not answer within {self._timeout_s:g} s"))
            self.close(f"no answer within {self._timeout_s:g} s")
        else:
            self._watchdog = self._loop.call_at(oldest, self._check_replies)

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        while True:
            try:
                reply = self._reader.gets()
            except hiredis.ProtocolError as exc:
                self._fail(RedisError(f"garbled reply from Redis: {exc}"))
                self.close("a garbled reply")
                return
            if reply is False:
                return
            if not self.answered:
                self.answered = True
                if self.on_first_reply is not None:
                    self.on_first_reply()
            _, waiter = self.waiting.popleft()
            if waiter.done():  # its caller gave up (cancelled)
                continue
            if isinstance(reply, hiredis.ReplyError):
                waiter.set_exception(RedisReplyError(str(reply)))
            else:
                waiter.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self._ended(f"the connection closed ({exc or 'EOF'})")
        self._fail(RedisError(f"the connection to Redis closed ({exc or 'EOF'})"))

    def _fail(self, error: RedisError) -> None:
        while self.waiting:
            _, waiter = self.waiting.popleft()
            if not waiter.done():
                waiter.set_exception(error)

    def _ended(self, why: str) -> None:
        if not self.closed:
            self.closed = True
            if not self.answered and self.on_silent_end is not None:
                self.on_silent_end(why)

    def close(self, why: str = "closed") -> None:
        self._ended(why)
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if self._transport is not None:
            self._transport.close()


class RedisClient:
    def __init__(self, url: str, *, timeout_s: float = 1.0) -> None:
        self._address = _Address.of(url)
        self._timeout_s = timeout_s
        self._connection: _Connection | None = None
        self._connecting: asyncio.Future[_Connection] | None = None
        self._random = random.Random()
        self._failures = 0  # connections in a row that never answered
        self._retry_at = 0.0  # no new connection before this (loop time)
        self._last_failure = ""

    async def call(self, *args: str | int | bytes) -> Any:
        connection = await self._connected()
        return await connection.send(encode(args))

    async def evalsha(self, script: Script, keys: Sequence[str], args: Sequence[str | int]) -> Any:
        command = ("EVALSHA", script.sha, len(keys), *keys, *args)
        try:
            return await self.call(*command)
        except RedisReplyError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
        await self.call("SCRIPT", "LOAD", script.text)
        return await self.call(*command)

    async def _connected(self) -> _Connection:
        connection = self._connection
        if connection is not None and not connection.closed:
            return connection
        wait = self._retry_at - asyncio.get_running_loop().time()
        if wait > 0:
            raise RedisError(
                f"Redis is unavailable ({self._last_failure}); "
                f"next connection attempt in {wait * 1000:.0f} ms"
            )
        # One connect at a time; every caller meanwhile waits for the same one.
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._connect())
        connecting = self._connecting
        try:
            return await asyncio.shield(connecting)
        finally:
            if connecting.done() and self._connecting is connecting:
                self._connecting = None

    async def _connect(self) -> _Connection:
        try:
            connection = await self._open()
        except RedisError as exc:
            self._failed(str(exc))
            raise
        # From now on its health is the client's: a first reply ends any backoff, and a
        # connection that ends without ever answering counts as a failed attempt.
        connection.on_first_reply = self._recovered
        connection.on_silent_end = self._failed
        if connection.answered:  # AUTH or SELECT went through
            self._recovered()
        self._connection = connection
        return connection

    async def _open(self) -> _Connection:
        address = self._address
        where = f"{address.host}:{address.port}"
        loop = asyncio.get_running_loop()
        connection: _Connection | None = None
        try:
            async with asyncio.timeout(self._timeout_s):
                _, connection = await loop.create_connection(
                    lambda: _Connection(self._timeout_s),
                    address.host,
                    address.port,
                    ssl=address.tls,
                    server_hostname=address.host if address.tls else None,
                )
                if address.auth is not None:
                    try:
                        await connection.send(encode(address.auth))
                    except RedisReplyError as exc:
                        who = f"user {address.username!r}" if address.username else "the password"
                        raise RedisError(
                            f"Redis at {where} refused the URL's credentials ({who}): {exc}"
                        ) from exc
                if address.db:
                    await connection.send(encode(("SELECT", address.db)))
        except BaseException as exc:
            if connection is not None:
                connection.close()
            if isinstance(exc, TimeoutError):
                raise RedisError(
                    f"no connection to Redis at {where} within {self._timeout_s:g} s"
                ) from exc
            if isinstance(exc, OSError):  # refused, unreachable, DNS, TLS handshake
                raise RedisError(f"cannot connect to Redis at {where}: {exc}") from exc
            raise
        return connection

    def _failed(self, why: str) -> None:
        """Back off: 50 ms, doubling to 2 s, each wait drawn from its upper half."""
        self._failures += 1
        self._last_failure = why
        ceiling = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** min(self._failures - 1, 16))
        wait = self._random.uniform(ceiling / 2, ceiling)
        self._retry_at = asyncio.get_running_loop().time() + wait

    def _recovered(self) -> None:
        self._failures = 0
        self._retry_at = 0.0

    async def close(self) -> None:
        if self._connecting is not None:
            self._connecting.cancel()
        if self._connection is not None:
            self._connection.close()
            self._connection = None
