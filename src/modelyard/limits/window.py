"""The sliding-window arithmetic shared by the backends (pure, so it is easy to test)."""

from __future__ import annotations

from collections.abc import Sequence

from modelyard.limits.base import WINDOW_S


def retry_after(
    entries: Sequence[tuple[float, int]],
    now: float,
    rpm: int | None,
    tpm: int | None,
    tokens: int,
) -> float:
    """Seconds until a request reserving `tokens` would fit, given the window's entries
    (time, tokens) oldest first. 0 when it fits now."""
    wait = 0.0
    if rpm is not None and len(entries) >= rpm:
        # The (len - rpm + 1)-th oldest entry must leave the window first.
        wait = max(wait, entries[len(entries) - rpm][0] + WINDOW_S - now)
    if tpm is not None:
        excess = sum(t for _, t in entries) + tokens - tpm
        for at, used in entries:
            if excess <= 0:
                break
            excess -= used
            wait = max(wait, at + WINDOW_S - now)
        if excess > 0:  # larger than the whole budget: it can never fit
            wait = max(wait, WINDOW_S)
    return max(wait, 0.0)
