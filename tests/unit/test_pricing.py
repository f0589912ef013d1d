from __future__ import annotations

from decimal import Decimal

from modelyard.catalog.pricing import request_cost
from modelyard.catalog.spec import Price

HAIKU = Price(prompt=0.8, completion=4.0, cache_read=0.08, cache_write=1.0)


def test_plain_tokens_are_priced_exactly() -> None:
    cost = request_cost(HAIKU, prompt_tokens=1000, completion_tokens=500)
    assert cost == Decimal("0.0028")  # 1000*0.8e-6 + 500*4e-6


def test_cached_and_cache_write_tokens_use_their_own_rates() -> None:
    cost = request_cost(
        HAIKU, prompt_tokens=3000, completion_tokens=0, cached_tokens=2000, cache_write_tokens=500
    )
    # 500 uncached * 0.8 + 2000 cached * 0.08 + 500 written * 1.0, per million
    assert cost == Decimal("0.00106")


def test_missing_cache_prices_fall_back_to_the_prompt_price() -> None:
    price = Price(prompt=1.0, completion=2.0)
    assert request_cost(price, prompt_tokens=10, completion_tokens=0, cached_tokens=10) == Decimal(
        "0.00001"
    )


def test_free_model_costs_nothing() -> None:
    assert request_cost(Price(), prompt_tokens=10**6, completion_tokens=10**6) == 0
