"""Per-endpoint health: a circuit breaker, plus recent latency and throughput for sorting.

Closed → (failure_threshold consecutive failures) → open: the endpoint is skipped for
`open_s` → half-open: one request may probe it; success closes the circuit, failure opens
it again. Rate limits (429) do not count as failures: the endpoint works, it is busy.
Latency (time to first token) and throughput are smoothed (EWMA) from every success.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum


class Circuit(Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass
class EndpointHealth:
    failures: int = 0
    opened_at: float | None = None
    probe_started: float | None = None
    latency_ms: float | None = None
    tokens_per_s: float | None = None


class HealthTracker:
    def __init__(
        self,
        *,
        failure_threshold: int = 5,
        open_s: float = 30.0,
        smoothing: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._threshold = failure_threshold
        self._open_s = open_s
        self._alpha = smoothing
        self._clock = clock
        self._endpoints: dict[str, EndpointHealth] = {}

    def _get(self, endpoint_id: str) -> EndpointHealth:
        health = self._endpoints.get(endpoint_id)
        if health is None:
            health = self._endpoints[endpoint_id] = EndpointHealth()
        return health

    def state(self, endpoint_id: str) -> Circuit:
        health = self._endpoints.get(endpoint_id)
        if health is None or health.opened_at is None:
            return Circuit.CLOSED
        if self._clock() - health.opened_at < self._open_s:
            return Circuit.OPEN
        return Circuit.HALF_OPEN

    def admit(self, endpoint_id: str) -> str | None:
        """None if a request may go to this endpoint now, else why not."""
        state = self.state(endpoint_id)
        if state is Circuit.CLOSED:
            return None
        health = self._get(endpoint_id)
        if state is Circuit.OPEN:
            assert health.opened_at is not None
            left = self._open_s - (self._clock() - health.opened_at)
            return f"circuit open after {health.failures} failures (retry in {left:.0f} s)"
        now = self._clock()
        # A probe reserved by a plan that never reached this endpoint expires after open_s.
        if health.probe_started is not None and now - health.probe_started < self._open_s:
            return "circuit half-open: a probe request is already in flight"
        health.probe_started = now
        return None

    def success(self, endpoint_id: str) -> None:
        health = self._endpoints.get(endpoint_id)
        if health is not None:
            health.failures = 0
            health.opened_at = None
            health.probe_started = None

    def observe(
        self, endpoint_id: str, latency_ms: float | None, tokens_per_s: float | None
    ) -> None:
        """Fold one served request's time to first token and throughput into the averages."""
        health = self._get(endpoint_id)
        if latency_ms is not None:
            health.latency_ms = self._smooth(health.latency_ms, latency_ms)
        if tokens_per_s is not None:
            health.tokens_per_s = self._smooth(health.tokens_per_s, tokens_per_s)

    def failure(self, endpoint_id: str) -> None:
        health = self._get(endpoint_id)
        health.failures += 1
        health.probe_started = None
        if health.opened_at is not None or health.failures >= self._threshold:
            health.opened_at = self._clock()

    def release(self, endpoint_id: str) -> None:
        """A probe that ended neither well nor badly (e.g. rate limited or cancelled)."""
        health = self._endpoints.get(endpoint_id)
        if health is not None:
            health.probe_started = None

    def latency_ms(self, endpoint_id: str) -> float | None:
        health = self._endpoints.get(endpoint_id)
        return health.latency_ms if health else None

    def tokens_per_s(self, endpoint_id: str) -> float | None:
        health = self._endpoints.get(endpoint_id)
        return health.tokens_per_s if health else None

    def _smooth(self, old: float | None, new: float) -> float:
        return new if old is None else old + self._alpha * (new - old)
