"""Cost of a request in USD, in exact decimal arithmetic from per-million-token prices."""

from __future__ import annotations

from decimal import Decimal

from modelyard.catalog.spec import Price

_MILLION = Decimal(1_000_000)


def _d(value: float | None, fallback: float) -> Decimal:
    return Decimal(str(value if value is not None else fallback))


def request_cost(
    price: Price,
    *,
    prompt_tokens: int,
    completion_tokens: int,
    cached_tokens: int = 0,
    cache_write_tokens: int = 0,
    reasoning_tokens: int = 0,
) -> Decimal:
    """`prompt_tokens` includes cached and cache-write tokens (OpenAI's convention), and
    `completion_tokens` includes reasoning tokens; each kind is priced at its own rate."""
    uncached = max(prompt_tokens - cached_tokens - cache_write_tokens, 0)
    visible = max(completion_tokens - reasoning_tokens, 0)
    total = (
        uncached * _d(price.prompt, 0)
        + cached_tokens * _d(price.cache_read, price.prompt)
        + cache_write_tokens * _d(price.cache_write, price.prompt)
        + visible * _d(price.completion, 0)
        + reasoning_tokens * _d(price.reasoning, price.completion)
    )
    return total / _MILLION
