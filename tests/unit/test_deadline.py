"""Deadline: the per-connection timer of the server's edge, on a real event loop."""

from __future__ import annotations

import asyncio

from modelyard.server.deadline import Deadline


async def _wait_for(condition: list[float], seconds: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    until = loop.time() + seconds
    while not condition and loop.time() < until:
        await asyncio.sleep(0.01)


def test_a_deadline_moved_later_fires_once_and_not_before_its_time() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        fired: list[float] = []
        deadline = Deadline(loop, lambda: fired.append(loop.time()))
        deadline.set(0.02)
        due = loop.time() + 0.2
        deadline.set(0.2)  # the timer armed for 0.02 s stays, and re-arms when it fires
        await _wait_for(fired)
        await asyncio.sleep(0.1)
        assert len(fired) == 1
        assert fired[0] >= due
        assert not deadline.armed

    asyncio.run(scenario())


def test_a_deadline_moved_earlier_fires_at_the_earlier_time() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        fired: list[float] = []
        deadline = Deadline(loop, lambda: fired.append(loop.time()))
        deadline.set(60)
        deadline.set(0.02)
        await _wait_for(fired)
        assert len(fired) == 1
        deadline.stop()

    asyncio.run(scenario())


def test_a_cleared_deadline_does_not_fire_and_can_be_set_again() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        fired: list[float] = []
        deadline = Deadline(loop, lambda: fired.append(loop.time()))
        deadline.set(0.02)
        deadline.clear()
        await asyncio.sleep(0.2)
        assert fired == []
        deadline.set(0.02)
        await _wait_for(fired)
        assert len(fired) == 1

    asyncio.run(scenario())
