"""Gateway overhead on the embedded model: tokens/s and time to first token.

Runs the same 256-token greedy generation (a) through llama-cpp-python called directly in
this process and (b) through a running `modelyard serve` with the official openai SDK,
alternating, several rounds, each round with a fresh prompt prefix so neither side reuses
a cached prompt. Prints a Markdown table (median of the rounds).

    .venv/bin/python -m bench.local_model [--rounds 5] [--tokens 256]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import openai
from llama_cpp import Llama
from tests.e2e.server import start_gateway

from modelyard.providers.local.model_file import resolve_model_path
from modelyard.providers.local.prompt import TURN_FORMATS, Turn

MODEL = "google/gemma-3-270m"
QUESTION = "Write a long, detailed story about a lighthouse keeper and the sea."


@dataclass
class Run:
    ttft_s: float
    tokens: int
    decode_s: float  # first token to last token

    @property
    def tokens_per_s(self) -> float:
        return (self.tokens - 1) / self.decode_s if self.decode_s > 0 else 0.0


def direct_run(llm: Llama, user_text: str, tokens: int) -> Run:
    prompt = TURN_FORMATS["gemma"]([Turn("user", user_text)]).text
    prompt_tokens = llm.tokenize(prompt.encode(), add_bos=True, special=True)
    started = time.perf_counter()
    first = last = 0.0
    count = 0
    for _chunk in llm.create_completion(
        prompt_tokens, max_tokens=tokens, temperature=0, stream=True
    ):
        last = time.perf_counter()
        if count == 0:
            first = last
        count += 1
    return Run(first - started, count, last - first)


def gateway_run(client: openai.OpenAI, user_text: str, tokens: int) -> Run:
    started = time.perf_counter()
    first = last = 0.0
    count = 0
    completion_tokens = 0
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": user_text}],
        max_tokens=tokens,
        temperature=0,
        stream=True,
    )
    for chunk in stream:
        if chunk.usage is not None:
            completion_tokens = chunk.usage.completion_tokens
        if chunk.choices and chunk.choices[0].delta.content:
            last = time.perf_counter()
            if count == 0:
                first = last
            count += 1
    return Run(first - started, completion_tokens or count, last - first)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--verbose", action="store_true", help="print every round")
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="modelyard-bench-"))
    path = resolve_model_path("builtin:gemma-3-270m", data_dir, show_progress=False)
    llm = Llama(model_path=str(path), n_ctx=8192, n_batch=512, verbose=False)
    gateway = start_gateway(data_dir)
    client = openai.OpenAI(base_url=gateway.api_url, api_key=gateway.app_key)
    direct: list[Run] = []
    through: list[Run] = []
    try:
        gateway_run(client, "warm up", 8)
        direct_run(llm, "warm up", 8)
        for index in range(args.rounds):
            text = f"[{index}] {QUESTION}"
            direct.append(direct_run(llm, text, args.tokens))
            through.append(gateway_run(client, text, args.tokens))
    finally:
        gateway.stop()

    def median(runs: list[Run], field: str) -> float:
        return float(statistics.median(getattr(r, field) for r in runs))

    # Rounds alternate direct and gateway, so the median of per-round differences cancels
    # the drift of a shared, noisy machine better than a difference of medians.
    added_ttft = statistics.median(
        (g.ttft_s - d.ttft_s) * 1000 for d, g in zip(direct, through, strict=True)
    )
    tps_ratio = statistics.median(
        g.tokens_per_s / d.tokens_per_s for d, g in zip(direct, through, strict=True)
    )
    if args.verbose:
        for d, g in zip(direct, through, strict=True):
            print(
                f"direct ttft {d.ttft_s * 1000:.1f} ms, {d.tokens_per_s:.1f} tok/s | "
                f"gateway ttft {g.ttft_s * 1000:.1f} ms, {g.tokens_per_s:.1f} tok/s"
            )
    d_tps, g_tps = median(direct, "tokens_per_s"), median(through, "tokens_per_s")
    d_ttft, g_ttft = median(direct, "ttft_s") * 1000, median(through, "ttft_s") * 1000
    columns = ["measure (median of rounds)", "llama-cpp-python direct", "through modelyard"]
    print(f"| {' | '.join(columns)} | gateway vs direct |")
    print("|---|---|---|---|")
    print(f"| tokens/s | {d_tps:.1f} | {g_tps:.1f} | {tps_ratio:.1%} (paired) |")
    print(
        f"| time to first token, ms | {d_ttft:.1f} | {g_ttft:.1f} | {added_ttft:+.1f} ms (paired) |"
    )
    print(
        f"| tokens generated | {median(direct, 'tokens'):.0f} | {median(through, 'tokens'):.0f} | |"
    )


if __name__ == "__main__":
    main()
