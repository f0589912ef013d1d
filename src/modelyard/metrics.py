"""Prometheus metrics, fed once per request from its ledger row (so the two always agree).

A registry per Gateway (not the process-global one), so tests and embedders can run
several gateways in one process.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from modelyard.store.records import Generation

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


TOKEN_KINDS = ("prompt", "completion", "cached", "cache_write", "reasoning")


@dataclass(frozen=True, slots=True)
class _Served:
    """The labelled series of one (model, provider), looked up once, not per request."""

    ttft: Histogram
    duration: Histogram
    cost: Counter
    tokens: tuple[Counter, ...]  # in TOKEN_KINDS order


class GatewayMetrics:
    def __init__(self, ledger_depth: Callable[[], int]) -> None:
        self.registry = CollectorRegistry()
        labels = ("model", "provider")
        self.requests = Counter(
            "modelyard_requests",
            "Chat completion requests by outcome",
            (*labels, "status", "streamed"),
            registry=self.registry,
        )
        self.duration = Histogram(
            "modelyard_request_duration_seconds",
            "Time from request to last token",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.ttft = Histogram(
            "modelyard_time_to_first_token_seconds",
            "Time from request to first token",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.tokens = Counter(
            "modelyard_tokens", "Tokens by kind", (*labels, "kind"), registry=self.registry
        )
        self.upstream_failures = Counter(
            "modelyard_upstream_failures",
            "Failed upstream attempts (fallbacks included)",
            ("provider", "status"),
            registry=self.registry,
        )
        self.cost = Counter("modelyard_cost_usd", "Spend in USD", labels, registry=self.registry)
        self.limiter_failures = Counter(
            "modelyard_rate_limiter_failures",
            "Calls to the shared rate limiter that failed",
            registry=self.registry,
        )
        ledger = Gauge(
            "modelyard_ledger_queue_depth",
            "Ledger rows waiting to be written",
            registry=self.registry,
        )
        ledger.set_function(lambda: float(ledger_depth()))
        # prometheus_client's labels() validates and locks on every call: 4% of the event
        # loop at 64 connections. The children it returns are kept here instead.
        self._outcomes: dict[tuple[str, str, int, bool], Counter] = {}
        self._served: dict[tuple[str, str], _Served] = {}

    def _outcome(self, model: str, provider: str, status: int, streamed: bool) -> Counter:
        key = (model, provider, status, streamed)
        child = self._outcomes.get(key)
        if child is None:
            child = self.requests.labels(model, provider, str(status), str(streamed).lower())
            self._outcomes[key] = child
        return child

    def _served_by(self, model: str, provider: str) -> _Served:
        served = self._served.get((model, provider))
        if served is None:
            served = _Served(
                ttft=self.ttft.labels(model, provider),
                duration=self.duration.labels(model, provider),
                cost=self.cost.labels(model, provider),
                tokens=tuple(self.tokens.labels(model, provider, kind) for kind in TOKEN_KINDS),
            )
            self._served[(model, provider)] = served
        return served

    def observe(self, row: Generation) -> None:
        model, provider = row.model, row.provider or "none"
        self._outcome(model, provider, row.status, row.streamed).inc()
        for attempt in row.attempts:
            if attempt.status != 200:
                self.upstream_failures.labels(attempt.provider, str(attempt.status)).inc()
        if row.provider is None:
            return
        served = self._served_by(model, provider)
        # A stream the client cut (499) or that failed midway is billed for what it relayed:
        # its tokens and cost count here as in the ledger; its timings describe no answer.
        if row.status == 200 and row.latency_ms is not None:
            served.ttft.observe(row.latency_ms / 1000)
            total_ms = row.latency_ms + (row.generation_time_ms or 0.0)
            served.duration.observe(total_ms / 1000)
        counts = (
            row.tokens_prompt,
            row.tokens_completion,
            row.tokens_cached,
            row.tokens_cache_write,
            row.tokens_reasoning,
        )
        for counter, count in zip(served.tokens, counts, strict=True):
            if count:
                counter.inc(count)
        if row.cost:
            served.cost.inc(float(row.cost))

    def render(self) -> bytes:
        return generate_latest(self.registry)
