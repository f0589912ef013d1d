"""uvicorn's httptools protocol, held to the limits a public server needs.

uvicorn buffers a request head of any size, waits for a head or a body forever, and closes
right after answering a request whose body it has not read (a socket closed with unread
data sends a reset, and a client still writing never sees the answer). This protocol
keeps one deadline per connection (server/deadline.py), moved as a request goes through
its phases:

    HEAD    the request head has `head_timeout_s` and `max_head_bytes` (431 past it)
    BODY    the whole body has `body_timeout_s` from the end of the head (a deadline, not
            an idle timeout: a trickle of one byte a second does not extend it)
    APP     the application has the request; no deadline (streams take their time)
    IDLE    uvicorn's keep-alive timeout
    LINGER  answered before the body was read: the rest is read and thrown away, for up to
            `linger_s` and LINGER_BYTES, so that the client can read the answer
    DISCARD answered by the server itself (431; 408 and 503 linger a second at most): read
            and thrown away, unparsed, until the client closes or the linger bounds are reached

A deadline that passes while the server itself has stopped reading (flow control,
pipelining) is not the client's fault and is re-armed.

This leans on uvicorn's protocol and request-cycle attributes (cycle, pipeline, flow,
keep_alive, response_started...); tests/e2e/test_edge.py is what says a new uvicorn
still fits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Final

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from modelyard.errors import GatewayError, RequestTimeout, ServiceUnavailable
from modelyard.server.deadline import Deadline
from modelyard.server.limits import BRIEF_LINGER_S, LINGER_BYTES, EdgeLimits
from modelyard.server.responses import HeadersTooLarge, closing_response


class Phase:
    """A connection's phase. Plain ints: an Enum member costs 4x more to look up, and
    these are looked up several times a request."""

    HEAD: Final = 0
    BODY: Final = 1
    APP: Final = 2
    IDLE: Final = 3
    LINGER: Final = 4
    DISCARD: Final = 5
    CLOSED: Final = 6


class EdgeProtocol(HttpToolsProtocol):
    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        limits: EdgeLimits,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._limits = limits
        self._phase: int = Phase.HEAD
        self._deadline = Deadline(self.loop, self._on_deadline)
        self._head_bytes = 0
        self._head_ended = False
        self._measure_head = False
        self._discard_left = 0
        self._close_after_body = False

    # -- asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self._limits.max_connections:
            refusal = ServiceUnavailable("The server has too many open connections; retry later.")
            self._refuse(refusal, linger_s=self._brief_linger_s())
            return
        self._deadline.set(self._limits.head_timeout_s)

    def connection_lost(self, exc: Exception | None) -> None:
        self._deadline.stop()
        self._phase = Phase.CLOSED
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        phase = self._phase
        if phase == Phase.DISCARD:
            self._discard(len(data))
            return
        if phase == Phase.IDLE:
            self._start_head()
        entered_head = self._phase == Phase.HEAD
        self._head_ended = False
        # A head that ends in this read is measured when complete, if it could be too large.
        self._measure_head = self._head_bytes + len(data) > self._limits.max_head_bytes
        self._feed(data)
        if self.transport.is_closing():
            return
        phase = self._phase
        if phase == Phase.HEAD:
            # A head still incomplete: count the read if it lay wholly inside the head (one
            # that began after another request's end in this read is counted from the next).
            if entered_head and not self._head_ended:
                self._head_bytes += len(data)
                if self._head_bytes > self._limits.max_head_bytes:
                    self._refuse(self._head_too_large())
        elif phase == Phase.BODY:
            if not self._deadline.armed:
                self._deadline.set(self._limits.body_timeout_s)
        elif phase == Phase.LINGER:
            self._discard(len(data))

    def _feed(self, data: bytes) -> None:
        """uvicorn's data_received, and a head found too large once parsed is a 431."""
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if isinstance(exc.__context__, _HeadTooLarge):
                self._refuse(self._head_too_large())
                return
            message = "Invalid HTTP request received."
            self.logger.warning(message)
            self.send_400_response(message)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()

    def _head_too_large(self) -> HeadersTooLarge:
        limit = self._limits.max_head_bytes
        return HeadersTooLarge(
            f"The request line and headers are larger than the {limit}-byte limit."
        )

    def _parsed_head_size(self) -> int:
        # The method, the version and the spaces and line ends around them: 20 bytes at most.
        return 20 + len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)

    # -- httptools parser callbacks --------------------------------------------------------
    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._phase == Phase.APP or self._phase == Phase.IDLE:
            # The next request, in the read that ended the last one: the keep-alive timer
            # that the end of a lingering body armed is not for it.
            self._unset_keepalive_if_required()
            self._start_head()

    def on_headers_complete(self) -> None:
        if self._phase != Phase.HEAD:  # refused or closing: start nothing more
            return
        if self._measure_head and self._parsed_head_size() > self._limits.max_head_bytes:
            raise _HeadTooLarge  # stops the parser before the body; _feed answers 431
        self._deadline.clear()
        self._head_ended = True
        super().on_headers_complete()
        self._phase = Phase.BODY
        if self.cycle is not None and not self.cycle.keep_alive:
            # The cycle closes the connection after its response; a body still arriving
            # must be read first, or the close becomes a reset that loses the response.
            self.cycle.transport = _CloseWhenBodyRead(self.transport, self._close_requested)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        phase = self._phase
        if phase == Phase.BODY:
            self._deadline.clear()
            self._phase = Phase.APP
        elif phase == Phase.LINGER:
            self._deadline.clear()
            if self._close_after_body:
                self._phase = Phase.CLOSED
                self.transport.close()
            else:
                self._phase = Phase.IDLE
                self.timeout_keep_alive_task = self.loop.call_later(
                    self.timeout_keep_alive, self.timeout_keep_alive_handler
                )

    # -- uvicorn's request cycle -----------------------------------------------------------
    def on_response_complete(self) -> None:
        latest = not self.pipeline  # else the phase is that of a request still queued
        super().on_response_complete()
        if not latest or self.transport.is_closing():
            return
        phase = self._phase
        if phase == Phase.BODY:  # answered before the body was read (e.g. 413, 401)
            self._linger(close_after=False)
        elif phase == Phase.LINGER:
            self._unset_keepalive_if_required()
        elif phase == Phase.APP:
            self._phase = Phase.IDLE

    def _close_requested(self) -> None:
        if self._phase == Phase.BODY:
            self._linger(close_after=True)
        else:
            self.transport.close()

    # -- phases ----------------------------------------------------------------------------
    def _start_head(self) -> None:
        self._phase = Phase.HEAD
        self._head_bytes = 0
        self._deadline.set(self._limits.head_timeout_s)

    def _linger(self, *, close_after: bool) -> None:
        self._phase = Phase.LINGER
        self._close_after_body = close_after
        self._discard_left = LINGER_BYTES
        self._unset_keepalive_if_required()
        self._deadline.set(self._limits.linger_s)

    def _discard(self, size: int) -> None:
        self._discard_left -= size
        if self._discard_left < 0:
            self.transport.close()

    def _refuse(self, error: GatewayError, *, linger_s: float | None = None) -> None:
        """Answer `error`, then read nothing more (close outright if a response is under way)."""
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            if cycle.response_started:
                self._phase = Phase.CLOSED
                self.transport.close()
                return
            cycle.disconnected = True  # the application's receive() now sees a disconnect
            cycle.message_event.set()
        self.transport.write(closing_response(error))
        self._phase = Phase.DISCARD
        self._discard_left = LINGER_BYTES
        self.parser = httptools.HttpRequestParser(self)  # drops a partial head it held
        self._unset_keepalive_if_required()
        self.flow.resume_reading()
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._deadline.set(self._limits.linger_s if linger_s is None else linger_s)

    def _brief_linger_s(self) -> float:
        return min(BRIEF_LINGER_S, self._limits.linger_s)

    # -- the one deadline ------------------------------------------------------------------
    def _on_deadline(self) -> None:
        if self.transport.is_closing():
            return
        phase = self._phase
        if phase == Phase.HEAD or phase == Phase.BODY:
            limits = self._limits
            limit = limits.head_timeout_s if phase == Phase.HEAD else limits.body_timeout_s
            if self.flow.read_paused:
                self._deadline.set(limit)
                return
            part = "request head" if phase == Phase.HEAD else "request body"
            timeout = RequestTimeout(f"The {part} did not arrive within {limit:g} s.")
            self._refuse(timeout, linger_s=self._brief_linger_s())
        else:
            self.transport.close()


class _HeadTooLarge(Exception):
    """Raised from a parser callback to stop the parser at the end of a head too large."""


class _CloseWhenBodyRead(asyncio.Transport):
    """The transport as a request cycle sees it: its close waits for the protocol's say."""

    def __init__(self, transport: asyncio.Transport, on_close: Callable[[], None]) -> None:
        super().__init__()
        self._transport = transport
        self._on_close = on_close

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._transport.write(data)

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def close(self) -> None:
        self._on_close()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)
