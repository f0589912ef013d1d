"""Rate limits per (app, model): requests and tokens in a sliding one-minute window.

`reserve` checks and consumes in one step (atomically, for the Redis backend across every
replica): a request counts once and reserves its estimated tokens; `settle` replaces the
estimate with what was really used, giving back the difference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from modelyard.errors import RateLimited

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

    @classmethod
    def admitted(
        cls,
        scope: str,
        id: str,
        tokens: int,
        limits: Limits,
        requests: int,
        used: int,
        reset_s: float,
    ) -> Reservation:
        """A reservation admitted into a window now holding `requests` and `used` tokens."""
        return cls(
            scope=scope,
            id=id,
            tokens=tokens,
            limit_requests=limits.rpm,
            remaining_requests=None if limits.rpm is None else max(limits.rpm - requests, 0),
            reset_requests_s=reset_s,
            limit_tokens=limits.tpm,
            remaining_tokens=None if limits.tpm is None else max(limits.tpm - used, 0),
            reset_tokens_s=reset_s,
        )

    @classmethod
    def unlimited(cls, scope: str, tokens: int) -> Reservation:
        """Served without a window (the limiter was away): no id to settle, no headers."""
        return cls(scope, "", tokens, None, None, 0.0, None, None, 0.0)

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


def rate_limited(scope: str, limits: Limits, wait: float) -> RateLimited:
    """The 429 for a request that fits the window again in `wait` seconds."""
    seconds = max(1, int(wait + 0.999))
    return RateLimited(
        f"Rate limit reached for {scope.split(':', 1)[-1]} "
        f"(limits: {limits.rpm or 'no'} requests and {limits.tpm or 'no'} tokens per minute). "
        f"Try again in {seconds} s.",
        headers={"Retry-After": str(seconds)},
        metadata={"retry_after_s": round(wait, 3)},
    )


class RateLimiter(Protocol):
    async def reserve(self, scope: str, limits: Limits, tokens: int) -> Reservation:
        """Count one request with `tokens` reserved, or raise RateLimited (Retry-After set)."""
        ...

    async def settle(self, reservation: Reservation, tokens: int) -> None:
        """Replace the reservation's estimate with the tokens really used."""
        ...

    async def close(self) -> None: ...
