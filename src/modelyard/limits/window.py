"""The sliding window both backends keep: requests and tokens counted in 100 ms buckets.

A request is counted in the bucket of the moment it was admitted and leaves the window
one minute after that bucket began, so it counts for 59.9 to 60 s. Buckets instead of one
entry per request keep each (app, model) window at most 600 small counters, whatever the
traffic: memory and the cost of a check no longer grow with the rate limit.
"""

from __future__ import annotations

from collections.abc import Sequence

from modelyard.limits.base import WINDOW_S

BUCKET_MS = 100
WINDOW_MS = round(WINDOW_S * 1000)


def bucket_of(now_ms: int) -> int:
    return now_ms // BUCKET_MS


def leaves_at_ms(bucket: int) -> int:
    """When a bucket's requests stop counting."""
    return bucket * BUCKET_MS + WINDOW_MS


def retry_after(
    buckets: Sequence[tuple[int, int, int]],
    now_ms: int,
    rpm: int | None,
    tpm: int | None,
    tokens: int,
) -> float:
    """Seconds until one more request reserving `tokens` would fit, given the window's
    buckets (bucket, requests, tokens) oldest first; 0 when it fits now."""
    requests_over = sum(b[1] for b in buckets) + 1 - rpm if rpm is not None else 0
    tokens_over = sum(b[2] for b in buckets) + tokens - tpm if tpm is not None else 0
    wait_ms = 0
    for bucket, requests, used in buckets:
        if requests_over <= 0 and tokens_over <= 0:
            break
        # This bucket must leave the window before the request fits.
        wait_ms = max(wait_ms, leaves_at_ms(bucket) - now_ms)
        requests_over -= requests
        tokens_over -= used
    if tokens_over > 0:  # more than the whole budget: it can never fit
        wait_ms = max(wait_ms, WINDOW_MS)
    return max(wait_ms, 0) / 1000
