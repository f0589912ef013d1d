"""The order in which a model's eligible endpoints are tried.

`provider.order` first (named providers in that order, then the rest unless fallbacks are
off); else `provider.sort` (price, latency or throughput); else a weighted random order
with weights 1/price², so cheaper endpoints take most traffic but not all of it.
"""

from __future__ import annotations

import math
import random

from modelyard.catalog import Endpoint
from modelyard.routing.health import HealthTracker
from modelyard.schema.chat import ProviderPreferences

FREE_WEIGHT = 1e12  # a free endpoint is preferred to any priced one


def order_endpoints(
    endpoints: list[Endpoint],
    prefs: ProviderPreferences,
    health: HealthTracker,
    rng: random.Random,
) -> list[Endpoint]:
    if prefs.order:
        rank = {provider: index for index, provider in enumerate(prefs.order)}
        named = sorted(
            (ep for ep in endpoints if ep.provider.id in rank), key=lambda ep: rank[ep.provider.id]
        )
        rest = [ep for ep in endpoints if ep.provider.id not in rank]
        if not prefs.allow_fallbacks:
            return named or rest[:1]
        return named + _default_order(rest, prefs, health, rng)
    return _default_order(endpoints, prefs, health, rng)


def _default_order(
    endpoints: list[Endpoint],
    prefs: ProviderPreferences,
    health: HealthTracker,
    rng: random.Random,
) -> list[Endpoint]:
    if prefs.sort == "price":
        return sorted(endpoints, key=total_price)
    if prefs.sort == "latency":
        # Unmeasured endpoints go last: a known fast one beats an unknown one.
        return sorted(endpoints, key=lambda ep: health.latency_ms(ep.id) or math.inf)
    if prefs.sort == "throughput":
        return sorted(endpoints, key=lambda ep: -(health.tokens_per_s(ep.id) or 0.0))
    return weighted_shuffle(endpoints, rng)


def total_price(endpoint: Endpoint) -> float:
    return endpoint.price.prompt + endpoint.price.completion


def weight(endpoint: Endpoint) -> float:
    price = total_price(endpoint)
    return FREE_WEIGHT if price <= 0 else 1.0 / (price * price)


def weighted_shuffle(endpoints: list[Endpoint], rng: random.Random) -> list[Endpoint]:
    """A random order where each endpoint comes first with probability ∝ its weight
    (Efraimidis–Spirakis: sort by u^(1/w), i.e. by log(u)/w)."""
    if len(endpoints) < 2:
        return list(endpoints)
    keyed = [
        (math.log(1.0 - rng.random()) / weight(ep), index) for index, ep in enumerate(endpoints)
    ]
    keyed.sort(reverse=True)
    return [endpoints[index] for _, index in keyed]
