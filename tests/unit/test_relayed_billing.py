"""What a stream cut short is billed: one token per relayed delta, and the prompt as the
upstream counted it early (Anthropic's message_start, cached and cache-write tokens apart)
or else the caller's estimate."""

from __future__ import annotations

import json

from modelyard.catalog.spec import ProviderSpec
from modelyard.ledger.billing import RelayedTokens
from modelyard.providers.anthropic_response import StreamTranslator
from modelyard.providers.base import Delta
from modelyard.providers.sse import SseEvent


def event(kind: str, **data: object) -> SseEvent:
    return SseEvent(kind, json.dumps({"type": kind, **data}))


def test_anthropic_first_delta_carries_the_prompt_counts_of_message_start() -> None:
    translator = StreamTranslator(ProviderSpec(id="anthropic", kind="anthropic"), False)
    usage = {"input_tokens": 30, "cache_read_input_tokens": 2000, "output_tokens": 1}
    assert translator.feed(event("message_start", message={"usage": usage})) == []
    start = {"type": "text", "text": ""}
    translator.feed(event("content_block_start", index=0, content_block=start))
    relayed = RelayedTokens()
    for text in ("Hel", "lo", " there"):
        text_delta = {"type": "text_delta", "text": text}
        (delta,) = translator.feed(event("content_block_delta", index=0, delta=text_delta))
        assert isinstance(delta, Delta)
        relayed.add(delta)
    billed = relayed.usage(prompt_estimate=7)
    assert (billed.prompt_tokens, billed.cached_tokens, billed.completion_tokens) == (2030, 2000, 3)


def test_without_an_early_count_the_prompt_is_the_estimate() -> None:
    relayed = RelayedTokens()
    relayed.add(Delta(content="a"))
    relayed.add(Delta(content="b"))
    billed = relayed.usage(prompt_estimate=7)
    assert (billed.prompt_tokens, billed.cached_tokens, billed.completion_tokens) == (7, 0, 2)
