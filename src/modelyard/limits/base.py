"""Rate limits per (app, model): requests and tokens in a sliding one-minute window.

`reserve` checks and consumes in one step (atomically, for the Redis backend across every
replica): a request counts once and reserves its estimated tokens; `settle` replaces the
estimate with what was really used, giving back the difference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

WINDOW_S = 60.0


@dataclass(frozen=True, slots=True)
class Limits:
    rpm: int | None
    tpm: int | None


@dataclass(frozen=True, slots=True)
class Reservation:
    scope: str
    id: str
    tokens: int
    # What the headers report, as seen when the reservation was made.
    limit_requests: int | None
    remaining_requests: int | None
    reset_requests_s: float
    limit_tokens: int | None
    remaining_tokens: int | None
    reset_tokens_s: float

    def headers(self) -> list[tuple[bytes, bytes]]:
        out: list[tuple[bytes, bytes]] = []
        if self.limit_requests is not None:
            out += [
                (b"x-ratelimit-limit-requests", str(self.limit_requests).encode()),
                (b"x-ratelimit-remaining-requests", str(self.remaining_requests).encode()),
                (b"x-ratelimit-reset-requests", _duration(self.reset_requests_s)),
            ]
        if self.limit_tokens is not None:
            out += [
                (b"x-ratelimit-limit-tokens", str(self.limit_tokens).encode()),
                (b"x-ratelimit-remaining-tokens", str(self.remaining_tokens).encode()),
                (b"x-ratelimit-reset-tokens", _duration(self.reset_tokens_s)),
            ]
        return out


def _duration(seconds: float) -> bytes:
    """OpenAI's format: "1s", "6m0s", "350ms"."""
    if seconds < 1:
        return f"{max(round(seconds * 1000), 0)}ms".encode()
    whole = round(seconds)
    minutes, secs = divmod(whole, 60)
    return (f"{minutes}m{secs}s" if minutes else f"{secs}s").encode()


class RateLimiter(Protocol):
    async def reserve(self, scope: str, limits: Limits, tokens: int) -> Reservation:
        """Count one request with `tokens` reserved, or raise RateLimited (Retry-After set)."""
        ...

    async def settle(self, reservation: Reservation, tokens: int) -> None:
        """Replace the reservation's estimate with the tokens really used."""
        ...

    async def close(self) -> None: ...
