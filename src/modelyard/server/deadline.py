"""A deadline per connection that is cheap to move."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable

NEVER = math.inf


class Deadline:
    """A time after which `on_expiry` runs once; `set` moves it, `clear` lifts it.

    Moving it later or lifting it leaves the armed timer alone: the timer re-arms for the
    rest when it fires early, and drops itself when nothing is due. A connection serving
    requests back to back so makes one `call_at` per timeout period, not one per request.
    """

    __slots__ = ("_at", "_loop", "_on_expiry", "_timer", "_timer_at")

    def __init__(self, loop: asyncio.AbstractEventLoop, on_expiry: Callable[[], None]) -> None:
        self._loop = loop
        self._on_expiry = on_expiry
        self._at = NEVER
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = NEVER

    @property
    def armed(self) -> bool:
        return self._at != NEVER

    def set(self, delay: float) -> None:
        at = self._loop.time() + delay
        self._at = at
        if self._timer is not None:
            if self._timer_at <= at:
                return
            self._timer.cancel()
        self._timer = self._loop.call_at(at, self._fire)
        self._timer_at = at

    def clear(self) -> None:
        self._at = NEVER

    def stop(self) -> None:
        self._at = NEVER
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _fire(self) -> None:
        self._timer = None
        at = self._at
        if at == NEVER:
            return
        if self._loop.time() < at:
            self._timer = self._loop.call_at(at, self._fire)
            self._timer_at = at
            return
        self._at = NEVER
        self._on_expiry()
