"""The embedded model reuses the KV of a repeated prompt prefix, even when conversations
with different prefixes take turns, and reports the reused tokens as cached_tokens."""

from __future__ import annotations

import openai

from modelyard.providers.local.engine import CHUNK
from tests.e2e.conftest import MODEL

SYSTEM_A = "You are a careful assistant for a bakery. " * 60
SYSTEM_B = "You are a terse assistant for a bicycle shop. " * 60


def ask(client: openai.OpenAI, system: str, question: str) -> tuple[int, int]:
    reply = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "system", "content": system}, {"role": "user", "content": question}],
        max_tokens=1,
    )
    usage = reply.usage
    assert usage is not None and usage.prompt_tokens_details is not None
    return usage.prompt_tokens, usage.prompt_tokens_details.cached_tokens or 0


def test_interleaved_conversations_keep_their_prefixes_warm(client: openai.OpenAI) -> None:
    prompt_a, _ = ask(client, SYSTEM_A, "Do you sell rye bread?")
    ask(client, SYSTEM_B, "Do you fix flat tyres?")
    # The live KV now holds B's prompt; A's prefix must come back from the saved state.
    prompt_a2, cached_a2 = ask(client, SYSTEM_A, "And croissants?")
    assert prompt_a > 400
    # Reuse is in whole evaluation chunks (what keeps seeded answers the same cold or warm):
    # all of the shared prefix but the question's few tokens and at most one partial chunk.
    assert cached_a2 >= prompt_a - 20 - CHUNK, (prompt_a, prompt_a2, cached_a2)
    prompt_b2, cached_b2 = ask(client, SYSTEM_B, "And brakes?")
    assert cached_b2 >= prompt_b2 - 20 - CHUNK
