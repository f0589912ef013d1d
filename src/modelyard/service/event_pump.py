"""Runs a provider's event stream in a task of its own and hands the events over a buffer.

The relay must wait for the next event with a timeout, to send keep-alives while the
model thinks, and cancelling an async generator mid-`anext` would end it. Awaiting each
event through a fresh task and `asyncio.wait` did that safely but cost a task, a timer
and a loop iteration per event (a third of a relayed chunk's CPU time). Here one task per
stream runs the generator; the relay takes buffered events without waiting, and only an
empty buffer costs it a future and a timer.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncGenerator

from modelyard.providers.base import StreamEvent

# Events buffered ahead of a slow client before the pump stops reading the provider.
MAX_BUFFERED = 256


class StreamQuiet(Exception):
    """No event came within the timeout; the stream goes on."""


class _End:
    """The stream ended."""


_END = _End()


class EventPump:
    def __init__(self, events: AsyncGenerator[StreamEvent, None]) -> None:
        self._events = events
        self._loop = asyncio.get_running_loop()
        self._buffer: deque[StreamEvent | Exception | _End] = deque()
        self._wanted: asyncio.Future[None] | None = None  # the relay, waiting for an event
        self._room: asyncio.Future[None] | None = None  # the pump, waiting for the relay
        self._task = asyncio.ensure_future(self._run())

    async def next(self, timeout_s: float) -> StreamEvent | None:
        """The next event, None once the stream has ended, or what the stream raised.
        StreamQuiet if none came within `timeout_s`; asking again resumes the same stream."""
        if not self._buffer:
            wanted = self._wanted = self._loop.create_future()
            try:
                async with asyncio.timeout(timeout_s):
                    await wanted
            except TimeoutError as exc:
                raise StreamQuiet from exc
            finally:
                self._wanted = None
        item = self._buffer.popleft()
        room = self._room
        if room is not None and not room.done():
            room.set_result(None)
        if isinstance(item, _End):
            self._buffer.appendleft(item)  # and so it stays ended
            return None
        if isinstance(item, Exception):
            raise item
        return item

    async def aclose(self) -> None:
        """Stop the stream (closing the provider's generator, and with it its upstream
        connection or generation)."""
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        try:
            async for event in self._events:
                if self._put(event):
                    # The relay was idle: let it send this event before we parse the next.
                    await asyncio.sleep(0)
                while len(self._buffer) >= MAX_BUFFERED:
                    self._room = self._loop.create_future()
                    await self._room
            self._put(_END)
        except Exception as exc:  # handed to the relay, which raises it in its own task
            self._put(exc)
        finally:
            await self._events.aclose()

    def _put(self, item: StreamEvent | Exception | _End) -> bool:
        """Buffer `item`; True if the relay was waiting for it."""
        self._buffer.append(item)
        wanted = self._wanted
        if wanted is not None and not wanted.done():
            wanted.set_result(None)
            return True
        return False
