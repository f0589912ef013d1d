"""A small asyncio Redis client for the rate limiter: one connection, commands pipelined on
it in order, replies parsed by hiredis (C).

It replaced redis-py's asyncio client, which with the limiter in Redis was over half of the
event loop's time at 64 connections (bench/profile_gateway --redis): a pooled connection,
a lock, a retry wrapper and Python-level parsing per command, two commands per request.
The limiter needs Lua scripts and nothing else, so this is what it has: `evalsha` (loading
the script when Redis does not know it yet) over any number of concurrent callers sharing
one connection. URLs: redis://[user:password@]host[:port][/db] and rediss:// for TLS.

Commands issued in one turn of the event loop leave in one write (with 64 requests in
flight, a few writes instead of 128). A command that gets no reply within `timeout_s`
closes the connection (later replies could no longer be matched to their callers); the
next command opens a new one.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import unquote, urlsplit

import hiredis


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
    tls: bool
    db: int
    username: str | None
    password: str | None

    @classmethod
    def of(cls, url: str) -> _Address:
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss"):
            raise ValueError(f"not a redis:// or rediss:// URL: {url!r}")
        path = parts.path.strip("/")
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 6379,
            tls=parts.scheme == "rediss",
            db=int(path) if path else 0,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )


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
            self.close()
        else:
            self._watchdog = self._loop.call_at(oldest, self._check_replies)

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        while True:
            try:
                reply = self._reader.gets()
            except hiredis.ProtocolError as exc:
                self._fail(RedisError(f"garbled reply from Redis: {exc}"))
                self.close()
                return
            if reply is False:
                return
            _, waiter = self.waiting.popleft()
            if waiter.done():  # its caller gave up (cancelled)
                continue
            if isinstance(reply, hiredis.ReplyError):
                waiter.set_exception(RedisReplyError(str(reply)))
            else:
                waiter.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(RedisError(f"the connection to Redis closed ({exc or 'EOF'})"))

    def _fail(self, error: RedisError) -> None:
        while self.waiting:
            _, waiter = self.waiting.popleft()
            if not waiter.done():
                waiter.set_exception(error)

    def close(self) -> None:
        self.closed = True
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
        address = self._address
        loop = asyncio.get_running_loop()
        connection: _Connection | None = None
        try:
            async with asyncio.timeout(self._timeout_s):
                _, connection = await loop.create_connection(
                    lambda: _Connection(self._timeout_s),
                    address.host,
                    address.port,
                    ssl=ssl.create_default_context() if address.tls else None,
                )
                if address.password is not None:
                    credentials = [address.username] if address.username else []
                    await connection.send(encode(("AUTH", *credentials, address.password)))
                if address.db:
                    await connection.send(encode(("SELECT", address.db)))
        except BaseException as exc:
            if connection is not None:
                connection.close()
            if isinstance(exc, TimeoutError):
                raise RedisError(f"no connection to Redis within {self._timeout_s:g} s") from exc
            if isinstance(exc, OSError):
                where = f"{address.host}:{address.port}"
                raise RedisError(f"cannot connect to Redis at {where}: {exc}") from exc
            raise
        self._connection = connection
        return connection

    async def close(self) -> None:
        if self._connecting is not None:
            self._connecting.cancel()
        if self._connection is not None:
            self._connection.close()
            self._connection = None
