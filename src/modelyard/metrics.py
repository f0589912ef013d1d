"""Prometheus metrics, fed once per request from its ledger row (so the two always agree).

A registry per Gateway (not the process-global one), so tests and embedders can run
several gateways in one process.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from modelyard.store.records import Generation

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


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

    def observe(self, row: Generation) -> None:
        model, provider = row.model, row.provider or "none"
        self.requests.labels(model, provider, str(row.status), str(row.streamed).lower()).inc()
        for attempt in row.attempts:
            if attempt.status != 200:
                self.upstream_failures.labels(attempt.provider, str(attempt.status)).inc()
        if row.status != 200:
            return
        if row.latency_ms is not None:
            self.ttft.labels(model, provider).observe(row.latency_ms / 1000)
            total_ms = row.latency_ms + (row.generation_time_ms or 0.0)
            self.duration.labels(model, provider).observe(total_ms / 1000)
        for kind, count in (
            ("prompt", row.tokens_prompt),
            ("completion", row.tokens_completion),
            ("cached", row.tokens_cached),
            ("cache_write", row.tokens_cache_write),
            ("reasoning", row.tokens_reasoning),
        ):
            if count:
                self.tokens.labels(model, provider, kind).inc(count)
        if row.cost:
            self.cost.labels(model, provider).inc(float(row.cost))

    def render(self) -> bytes:
        return generate_latest(self.registry)
