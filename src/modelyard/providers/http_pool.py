"""The connections of one origin: idle ones kept for reuse, and a cap on how many are open.

At the cap a caller queues; a connection given back goes straight to the first in the
queue (or, when it cannot be reused, its place does: that caller opens a new one), so
the queue is served in order and a freed place is never lost.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, Protocol, TypeVar


class PooledConnection(Protocol):
    def usable(self) -> bool:
        """Still open, not expired, and nothing (EOF, stray bytes) arrived while idle."""

    def close(self) -> None: ...


C = TypeVar("C", bound=PooledConnection)


class OriginPool(Generic[C]):
    def __init__(self, max_open: int, max_idle: int) -> None:
        self.max_open = max_open
        self._max_idle = max_idle
        self.open = 0  # idle + in use + being opened
        self._idle: list[C] = []
        self._queue: deque[asyncio.Future[C | None]] = deque()

    async def acquire(self) -> C | None:
        """A reusable idle connection, or None: the caller may open one (its place is
        counted; give it back with `release` or `discard`). Waits while at the cap."""
        while self._idle:
            connection = self._idle.pop()
            if connection.usable():
                return connection
            self._drop(connection)
        if self.open < self.max_open:
            self.open += 1
            return None
        waiter: asyncio.Future[C | None] = asyncio.get_running_loop().create_future()
        self._queue.append(waiter)
        try:
            handed = await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._pass_on(waiter.result())  # handed over just as the caller gave up
            else:
                self._queue.remove(waiter)
            raise
        if handed is not None and not handed.usable():
            handed.close()  # its place stays with this caller, who opens a new one
            return None
        return handed

    def release(self, connection: C) -> None:
        """A connection whose exchange ended cleanly and may serve another."""
        if self._queue:
            self._pass_on(connection)
        elif len(self._idle) < self._max_idle:
            self._idle.append(connection)
        else:
            self._drop(connection)

    def discard(self, connection: C | None) -> None:
        """Close a connection that must not be reused (None: one that never opened)."""
        if connection is not None:
            connection.close()
        self._pass_on(None)

    def _pass_on(self, handed: C | None) -> None:
        while self._queue:
            waiter = self._queue.popleft()
            if not waiter.done():
                waiter.set_result(handed)
                return
        if handed is None:
            self.open -= 1
        else:
            self.release(handed)

    def _drop(self, connection: C) -> None:
        connection.close()
        self.open -= 1

    def close(self) -> None:
        while self._idle:
            self._drop(self._idle.pop())
