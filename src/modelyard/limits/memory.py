"""In-process rate limits: exact for one gateway process (the default backend)."""

from __future__ import annotations

import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from modelyard.errors import RateLimited
from modelyard.limits.base import WINDOW_S, Limits, Reservation
from modelyard.limits.window import retry_after


@dataclass
class _Entry:
    at: float
    id: str
    tokens: int


@dataclass
class _Window:
    entries: deque[_Entry] = field(default_factory=deque)
    by_id: dict[str, _Entry] = field(default_factory=dict)
    tokens: int = 0

    def expire(self, now: float) -> None:
        while self.entries and self.entries[0].at <= now - WINDOW_S:
            entry = self.entries.popleft()
            self.tokens -= entry.tokens
            del self.by_id[entry.id]


class MemoryRateLimiter:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._windows: dict[str, _Window] = {}

    async def reserve(self, scope: str, limits: Limits, tokens: int) -> Reservation:
        now = self._clock()
        window = self._windows.setdefault(scope, _Window())
        window.expire(now)
        entries = window.entries
        wait = (
            retry_after([(e.at, e.tokens) for e in entries], now, limits.rpm, limits.tpm, tokens)
            if _full(window, limits, tokens)
            else 0.0
        )
        if wait > 0:
            raise rate_limited(scope, limits, wait)
        entry = _Entry(now, secrets.token_hex(6), tokens)
        entries.append(entry)
        window.by_id[entry.id] = entry
        window.tokens += tokens
        oldest = entries[0].at
        reset = oldest + WINDOW_S - now
        return Reservation(
            scope=scope,
            id=entry.id,
            tokens=tokens,
            limit_requests=limits.rpm,
            remaining_requests=None if limits.rpm is None else max(limits.rpm - len(entries), 0),
            reset_requests_s=reset,
            limit_tokens=limits.tpm,
            remaining_tokens=None if limits.tpm is None else max(limits.tpm - window.tokens, 0),
            reset_tokens_s=reset,
        )

    async def settle(self, reservation: Reservation, tokens: int) -> None:
        window = self._windows.get(reservation.scope)
        entry = window.by_id.get(reservation.id) if window else None
        if window is not None and entry is not None:
            window.tokens += tokens - entry.tokens
            entry.tokens = tokens

    async def close(self) -> None:
        self._windows.clear()


def _full(window: _Window, limits: Limits, tokens: int) -> bool:
    if limits.rpm is not None and len(window.entries) >= limits.rpm:
        return True
    return limits.tpm is not None and window.tokens + tokens > limits.tpm


def rate_limited(scope: str, limits: Limits, wait: float) -> RateLimited:
    seconds = max(1, int(wait + 0.999))
    return RateLimited(
        f"Rate limit reached for {scope.split(':', 1)[-1]} "
        f"(limits: {limits.rpm or 'no'} requests and {limits.tpm or 'no'} tokens per minute). "
        f"Try again in {seconds} s.",
        headers={"Retry-After": str(seconds)},
        metadata={"retry_after_s": round(wait, 3)},
    )
