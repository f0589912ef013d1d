"""EventPump: a stream waited on with timeouts loses nothing, stops early on request, and
buffers only so far ahead of a slow reader."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import pytest

from modelyard.errors import UpstreamError
from modelyard.providers.base import Delta, Finish, StreamEvent, Usage
from modelyard.service.event_pump import MAX_BUFFERED, EventPump, StreamQuiet


class Source:
    """A provider stream whose events the test releases one by one, or all at once."""

    def __init__(self, events: list[StreamEvent], *, gate: bool = True) -> None:
        self.events = events
        self.release = asyncio.Semaphore(0 if gate else len(events) + 1)
        self.produced = 0
        self.closed = False

    async def stream(self) -> AsyncGenerator[StreamEvent, None]:
        try:
            for event in self.events:
                await self.release.acquire()
                self.produced += 1
                yield event
        finally:
            self.closed = True


def deltas(count: int) -> list[StreamEvent]:
    return [Delta(content=str(n)) for n in range(count)]


async def test_a_quiet_stream_times_out_and_then_goes_on_where_it_was() -> None:
    source = Source([*deltas(2), Finish("stop", "stop", Usage())])
    pump = EventPump(source.stream())
    with pytest.raises(StreamQuiet):
        await pump.next(0.05)
    with pytest.raises(StreamQuiet):
        await pump.next(0.05)  # a keep-alive each time; the stream is still there
    for _ in range(3):
        source.release.release()
    assert [await pump.next(1) for _ in range(3)] == source.events
    assert await pump.next(1) is None
    assert await pump.next(1) is None  # ended stays ended
    await pump.aclose()
    assert source.closed


async def test_what_the_stream_raises_reaches_the_reader() -> None:
    async def failing() -> AsyncGenerator[StreamEvent, None]:
        yield Delta(content="a")
        raise UpstreamError("broke off", retryable=False)

    pump = EventPump(failing())
    assert await pump.next(1) == Delta(content="a")
    with pytest.raises(UpstreamError, match="broke off"):
        await pump.next(1)
    await pump.aclose()


async def test_closing_early_closes_the_provider_stream() -> None:
    source = Source(deltas(10))
    pump = EventPump(source.stream())
    source.release.release()
    assert await pump.next(1) == Delta(content="0")
    await pump.aclose()
    assert source.closed and source.produced == 1


async def test_a_slow_reader_holds_the_pump_back() -> None:
    source = Source(deltas(MAX_BUFFERED * 3), gate=False)
    pump = EventPump(source.stream())
    await asyncio.sleep(0.05)
    assert source.produced <= MAX_BUFFERED + 1
    taken = [await pump.next(1) for _ in range(MAX_BUFFERED * 3)]
    assert taken == source.events
    assert await pump.next(1) is None
    await pump.aclose()
