"""In-process rate limits: exact for one gateway process (the default backend)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from modelyard.limits.base import Limits, Reservation, rate_limited
from modelyard.limits.window import bucket_of, leaves_at_ms, retry_after


@dataclass
class _Window:
    # [bucket, requests, tokens], oldest first; the last one is where new requests go.
    buckets: deque[list[int]] = field(default_factory=deque)
    requests: int = 0
    tokens: int = 0

    def expire(self, now_ms: int) -> None:
        buckets = self.buckets
        while buckets and leaves_at_ms(buckets[0][0]) <= now_ms:
            _, requests, tokens = buckets.popleft()
            self.requests -= requests
            self.tokens -= tokens

    def add(self, bucket: int, tokens: int) -> None:
        buckets = self.buckets
        if buckets and buckets[-1][0] == bucket:
            buckets[-1][1] += 1
            buckets[-1][2] += tokens
        else:
            buckets.append([bucket, 1, tokens])
        self.requests += 1
        self.tokens += tokens

    def find(self, bucket: int) -> list[int] | None:
        for entry in reversed(self.buckets):  # a reservation settles soon: near the end
            if entry[0] == bucket:
                return entry
            if entry[0] < bucket:
                break
        return None


class MemoryRateLimiter:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._windows: dict[str, _Window] = {}

    async def reserve(self, scope: str, limits: Limits, tokens: int) -> Reservation:
        now_ms = round(self._clock() * 1000)
        window = self._windows.get(scope)
        if window is None:
            window = self._windows[scope] = _Window()
        window.expire(now_ms)
        if _full(window, limits, tokens):
            buckets = [(b, r, t) for b, r, t in window.buckets]
            wait = retry_after(buckets, now_ms, limits.rpm, limits.tpm, tokens)
            if wait > 0:
                raise rate_limited(scope, limits, wait)
        bucket = bucket_of(now_ms)
        window.add(bucket, tokens)
        reset = (leaves_at_ms(window.buckets[0][0]) - now_ms) / 1000
        return Reservation.admitted(
            scope, str(bucket), tokens, limits, window.requests, window.tokens, reset
        )

    async def settle(self, reservation: Reservation, tokens: int) -> None:
        window = self._windows.get(reservation.scope)
        entry = window.find(int(reservation.id)) if window else None
        if window is not None and entry is not None:
            entry[2] += tokens - reservation.tokens
            window.tokens += tokens - reservation.tokens

    async def close(self) -> None:
        self._windows.clear()


def _full(window: _Window, limits: Limits, tokens: int) -> bool:
    if limits.rpm is not None and window.requests >= limits.rpm:
        return True
    return limits.tpm is not None and window.tokens + tokens > limits.tpm
