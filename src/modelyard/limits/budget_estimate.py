"""The most a request can cost, before it is sent: what a spend limit reserves.

The prompt is counted generously (twice the planner's characters-per-token estimate plus
a chat template's few tokens per message) and the answer at its `max_tokens`, or the
endpoint's max output when unset; every kind of token at the dearest rate it may be
billed at. When fallbacks may move the request to another endpoint, the dearest route
counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from modelyard.catalog.pricing import request_cost
from modelyard.catalog.spec import Price
from modelyard.providers.base import output_tokens
from modelyard.routing.filters import min_prompt_tokens
from modelyard.routing.planner import Route
from modelyard.schema.chat import ChatRequest

TEMPLATE_TOKENS_PER_MESSAGE = 8


def prompt_ceiling(request: ChatRequest) -> int:
    """A prompt token count the real one rarely exceeds (also what TPM reserves)."""
    return min_prompt_tokens(request) * 2 + TEMPLATE_TOKENS_PER_MESSAGE * len(request.messages)


@dataclass(frozen=True, slots=True)
class _RouteCeiling:
    price: Price  # the route's dearest rates (see _dearest)
    prompt_tokens: int
    max_tokens: int
    cost: Decimal

    @classmethod
    def of(cls, price: Price, prompt_tokens: int, max_tokens: int) -> _RouteCeiling:
        cost = request_cost(price, prompt_tokens=prompt_tokens, completion_tokens=max_tokens)
        return cls(price, prompt_tokens, max_tokens, cost)

    def affordable(self, remaining: Decimal) -> int:
        """The most answer tokens `remaining` covers (worked out only for a refusal)."""
        prompt_cost = request_cost(
            self.price, prompt_tokens=self.prompt_tokens, completion_tokens=0
        )
        token_cost = request_cost(self.price, prompt_tokens=0, completion_tokens=1)
        if token_cost == 0:
            return self.max_tokens if remaining >= prompt_cost else 0
        return max(int((remaining - prompt_cost) // token_cost), 0)


@dataclass(frozen=True, slots=True)
class SpendAsk:
    """What one request asks of a key's budget."""

    routes: tuple[_RouteCeiling, ...]

    @property
    def amount(self) -> Decimal:
        return max(route.cost for route in self.routes)

    @property
    def requested_tokens(self) -> int:
        return max(route.max_tokens for route in self.routes)

    def affordable_tokens(self, remaining: Decimal) -> int:
        """The largest max_tokens that `remaining` covers on every route."""
        return min(route.affordable(remaining) for route in self.routes)

    def prompt_alone_exceeds(self, remaining: Decimal) -> bool:
        """Even with no answer at all, the input costs more than `remaining` on some route
        (lowering max_tokens cannot help; an embeddings request has nothing else)."""
        return any(
            request_cost(route.price, prompt_tokens=route.prompt_tokens, completion_tokens=0)
            > remaining
            for route in self.routes
        )


def spend_ask(request: ChatRequest, routes: list[Route]) -> SpendAsk:
    allow_fallbacks = request.provider is None or request.provider.allow_fallbacks
    tried = routes if allow_fallbacks else routes[:1]
    prompt = prompt_ceiling(request)
    return SpendAsk(
        tuple(
            _RouteCeiling.of(
                _dearest(route.endpoint.price),
                prompt,
                output_tokens(request, route.endpoint),
            )
            for route in tried
        )
    )


def _dearest(price: Price) -> Price:
    """Prompt and answer tokens each at the highest rate they could be billed at."""
    prompt = max(price.prompt, price.cache_read or 0.0, price.cache_write or 0.0)
    completion = max(price.completion, price.reasoning or 0.0)
    if prompt == price.prompt and completion == price.completion:
        return price  # the ceiling bills no cached or reasoning tokens: same rates
    return Price(prompt=prompt, completion=completion)
