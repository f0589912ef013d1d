"""A seeded request to the embedded model answers the same text whatever ran before it:
cold start, warm, after other conversations that share or do not share its prefix, with a
long system prompt served from the prefix cache, streamed or not."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.e2e.conftest import MODEL
from tests.e2e.server import RunningGateway, start_gateway

SHORT_SYSTEM = "You are a storyteller."
LONG_SYSTEM = "You tell short stories about lighthouses and their keepers. " * 50
QUESTION = "Tell me a story about a fox."


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[openai.OpenAI]:
    # Its own gateway, so the first request really meets an empty KV cache.
    running: RunningGateway = start_gateway(Path(tmp_path_factory.mktemp("seed-gateway")))
    yield openai.OpenAI(base_url=running.api_url, api_key=running.app_key, max_retries=0)
    running.stop()


def ask(
    client: openai.OpenAI, system: str, question: str = QUESTION, *, stream: bool = False
) -> tuple[str, int]:
    """The reply's text and how many prompt tokens it reused."""
    messages: list[dict[str, str]] = [
        {"role": "system", "content": system},
        {"role": "user", "content": question},
    ]
    args = {"model": MODEL, "messages": messages, "max_tokens": 32, "temperature": 0.9}
    if not stream:
        reply = client.chat.completions.create(**args, seed=1234)  # type: ignore[call-overload]
        usage = reply.usage
        assert usage is not None and usage.prompt_tokens_details is not None
        return reply.choices[
            0
        ].message.content or "", usage.prompt_tokens_details.cached_tokens or 0
    text: list[str] = []
    cached = 0
    chunks = client.chat.completions.create(  # type: ignore[call-overload]
        **args, seed=1234, stream=True, stream_options={"include_usage": True}
    )
    for chunk in chunks:
        if chunk.choices and chunk.choices[0].delta.content:
            text.append(chunk.choices[0].delta.content)
        if chunk.usage is not None and chunk.usage.prompt_tokens_details is not None:
            cached = chunk.usage.prompt_tokens_details.cached_tokens or 0
    return "".join(text), cached


@pytest.mark.parametrize("system", [SHORT_SYSTEM, LONG_SYSTEM], ids=["short", "long"])
def test_same_seed_same_text_whatever_ran_before(fresh: openai.OpenAI, system: str) -> None:
    runs: dict[str, tuple[str, int]] = {}
    runs["first"] = ask(fresh, system)
    runs["again"] = ask(fresh, system)
    runs["streamed"] = ask(fresh, system, stream=True)
    ask(fresh, system, "What is the capital of France?")  # shares the system prompt
    runs["after a sibling"] = ask(fresh, system)
    ask(fresh, "You are a terse assistant for a bicycle shop. " * 40, "Do you fix brakes?")
    runs["after a stranger"] = ask(fresh, system)
    runs["streamed after a stranger"] = ask(fresh, system, stream=True)
    texts = {name: text for name, (text, _) in runs.items()}
    assert len(set(texts.values())) == 1, texts
    assert len(texts["first"]) > 20, texts  # 32 sampled tokens, not an empty reply
    if system == LONG_SYSTEM:
        # The equality above covered reuse: from the live KV and from a saved state.
        assert runs["again"][1] > 256, runs
        assert runs["after a stranger"][1] > 256, runs
