"""What a request is billed: usage priced at its endpoint's prices, and the usage of a
stream that ended before the upstream reported any (cut by the client or failed midway)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from modelyard.catalog.pricing import request_cost
from modelyard.catalog.spec import Price
from modelyard.providers.base import Delta, Usage


def usage_cost(price: Price, usage: Usage) -> Decimal:
    return request_cost(
        price,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        cached_tokens=usage.cached_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        reasoning_tokens=usage.reasoning_tokens,
    )


@dataclass(slots=True)
class RelayedTokens:
    """Counts what a stream sent on: each delta is one token (the embedded model and
    OpenAI-style upstreams send one token a chunk); prompt tokens as the upstream
    reported them early, if it did, else the caller's estimate."""

    completion: int = 0
    prompt: Usage | None = None

    def add(self, delta: Delta) -> None:
        if delta.content or delta.reasoning or delta.tool_calls:
            self.completion += 1  # not for a native-only event (a ping, a block's end)
        if delta.prompt_usage is not None:
            self.prompt = delta.prompt_usage

    def usage(self, prompt_estimate: int) -> Usage:
        if self.prompt is None:
            return Usage(prompt_tokens=prompt_estimate, completion_tokens=self.completion)
        return Usage(
            prompt_tokens=self.prompt.prompt_tokens,
            completion_tokens=self.completion,
            cached_tokens=self.prompt.cached_tokens,
            cache_write_tokens=self.prompt.cache_write_tokens,
        )
