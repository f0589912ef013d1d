"""Time to first token with a repeated 1,500-token system prompt: cold versus warm.

Through a running `modelyard serve` (the default embedded model, SmolLM2 135M Instruct),
streaming with the openai SDK. Prompts evaluate in position-aligned 16-token chunks and only
whole chunks are reused, so a warm request evaluates its last partial chunk and the question.
Each round uses a fresh system prompt (so "cold" is really cold), then asks again with the
same prefix right away ("warm, live KV"), then after another conversation with a different
prefix has run in between ("warm, restored": the saved-state cache must bring it back).

    .venv/bin/python -m bench.prefix_cache [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import openai
from tests.e2e.conftest import MODEL  # the default embedded model
from tests.e2e.server import start_gateway


def system_prompt(round_index: int) -> str:
    # ~1,500 tokens, different from the first token on in every round.
    return f"Round {round_index}. " + "You answer questions about lighthouses. " * 215


def ttft(client: openai.OpenAI, system: str, question: str) -> tuple[float, int, int]:
    started = time.perf_counter()
    first = 0.0
    prompt = cached = 0
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "system", "content": system}, {"role": "user", "content": question}],
        max_tokens=2,
        stream=True,
    )
    for chunk in stream:
        if chunk.choices and first == 0.0:
            first = time.perf_counter() - started
        if chunk.usage is not None:
            prompt = chunk.usage.prompt_tokens
            details = chunk.usage.prompt_tokens_details
            cached = (details.cached_tokens or 0) if details else 0
    return first * 1000, prompt, cached


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    gateway = start_gateway(Path(tempfile.mkdtemp(prefix="modelyard-bench-")))
    client = openai.OpenAI(base_url=gateway.api_url, api_key=gateway.app_key)
    cold, live, restored = [], [], []
    prompt_tokens = 0
    try:
        for index in range(args.rounds):
            system = system_prompt(index)
            ms, prompt_tokens, _ = ttft(client, system, "How tall is the tallest one?")
            cold.append(ms)
            live.append(ttft(client, system, "Who keeps them?")[0])
            ttft(client, system_prompt(1000 + index), "Something else entirely.")
            ms, _, cached = ttft(client, system, "Are they still used?")
            assert cached > prompt_tokens - 40, "the prefix was not restored"
            restored.append(ms)
    finally:
        gateway.stop()
    c, w, r = (statistics.median(x) for x in (cold, live, restored))
    print(f"prompt: {prompt_tokens} tokens; median of {args.rounds} rounds")
    print("| request | time to first token | vs cold |")
    print("|---|---|---|")
    print(f"| cold (new 1,500-token system prompt) | {c:.0f} ms | 100% |")
    print(f"| warm, same prefix next request (live KV) | {w:.0f} ms | {w / c:.1%} |")
    print(f"| warm, after another conversation (restored state) | {r:.0f} ms | {r / c:.1%} |")


if __name__ == "__main__":
    main()
