"""Gateway overhead on the embedded chat models: tokens/s, time to first token, memory.

Runs the same 256-token greedy generation (a) through llama-cpp-python called directly in
this process, the prompt rendered as the gateway renders it (the GGUF's own chat template
for SmolLM2, the "gemma" turn format for Gemma), and (b) through a running `modelyard
serve` with the official openai SDK, alternating, several rounds, each round with a fresh
user text. Prints a Markdown table per model (median of the rounds) and the RSS each model
adds when llama.cpp loads it (measured in a fresh process, with the gateway's n_ctx).

    .venv/bin/python -m bench.local_model [--rounds 5] [--tokens 256] [--gemma]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
from llama_cpp import Llama
from tests.e2e.server import RunningGateway, start_gateway

from bench.procs import child_rss, rss_mb
from modelyard.providers.local.model_file import resolve_model_path
from modelyard.providers.local.prompt import TURN_FORMATS, TemplateFormat, Turn, TurnFormat

QUESTION = "Write a long, detailed story about a lighthouse keeper and the sea."
N_CTX = 8192  # both catalog entries' context_length: the gateway loads them with it


@dataclass(frozen=True)
class Model:
    id: str
    builtin: str
    chat_format: str | None  # None: the GGUF's chat template


MODELS = {
    "smollm2": Model("huggingface/smollm2-135m-instruct", "builtin:smollm2-135m-instruct", None),
    "gemma": Model("google/gemma-3-270m", "builtin:gemma-3-270m", "gemma"),
}


@dataclass
class Run:
    ttft_s: float
    tokens: int
    decode_s: float  # first token to last token

    @property
    def tokens_per_s(self) -> float:
        return (self.tokens - 1) / self.decode_s if self.decode_s > 0 else 0.0


def load(path: Path) -> Llama:
    # As providers/local/engine.py loads it (threads: llama.cpp's default, as the catalog's).
    return Llama(model_path=str(path), n_ctx=N_CTX, n_batch=512, verbose=False)


def turn_format(llm: Llama, model: Model) -> TurnFormat:
    """What providers/local/provider.py picks for the endpoint."""
    template = llm.metadata.get("tokenizer.chat_template")
    if model.chat_format or not template:
        return TURN_FORMATS[model.chat_format or "gemma"]

    def text(token: int) -> str:
        return llm.detokenize([token], special=True).decode("utf-8", "replace")

    return TemplateFormat(template, text(llm.token_bos()), text(llm.token_eos()))


def direct_run(llm: Llama, render: TurnFormat, user_text: str, tokens: int) -> Run:
    prompt = render([Turn("user", user_text)]).text
    prompt_tokens = llm.tokenize(prompt.encode(), add_bos=True, special=True)
    started = time.perf_counter()
    first = last = 0.0
    count = 0
    for chunk in llm.create_completion(
        prompt_tokens, max_tokens=tokens, temperature=0, stream=True
    ):
        if not chunk["choices"][0]["text"]:  # type: ignore[index]
            continue  # the closing chunk (finish_reason only)
        last = time.perf_counter()
        if count == 0:
            first = last
        count += 1
    return Run(first - started, count, last - first)


def gateway_run(client: openai.OpenAI, model: str, user_text: str, tokens: int) -> Run:
    started = time.perf_counter()
    first = last = 0.0
    count = 0
    completion_tokens = 0
    stream = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": user_text}],
        max_tokens=tokens,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
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


def model_client(gateway: RunningGateway, model: Model) -> openai.OpenAI:
    """A client with a key for the model: attached to the app "default" with its own key."""
    attached = httpx.post(
        f"{gateway.base_url}/admin/apps/default/models",
        json={"model": model.id, "alias": "BENCH_" + model.builtin.split(":")[1][:5].upper()},
        headers={"Authorization": f"Bearer {gateway.admin_key}"},
    )
    attached.raise_for_status()
    key = next(v for k, v in attached.json()["config"].items() if k.endswith("_KEY"))
    return openai.OpenAI(base_url=gateway.api_url, api_key=key, max_retries=0)


def bench_model(
    gateway: RunningGateway, model: Model, data_dir: Path, rounds: int, tokens: int, verbose: bool
) -> None:
    path = resolve_model_path(model.builtin, data_dir, show_progress=False)
    before, after = child_rss("bench.local_model", path)
    llm = load(path)
    render = turn_format(llm, model)
    client = model_client(gateway, model)
    gateway_run(client, model.id, "warm up", 8)
    direct_run(llm, render, "warm up", 8)
    direct: list[Run] = []
    through: list[Run] = []
    for index in range(rounds):
        text = f"[{index}] {QUESTION}"
        direct.append(direct_run(llm, render, text, tokens))
        through.append(gateway_run(client, model.id, text, tokens))
    del llm

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
    if verbose:
        for d, g in zip(direct, through, strict=True):
            print(
                f"direct ttft {d.ttft_s * 1000:.1f} ms, {d.tokens_per_s:.1f} tok/s, {d.tokens} | "
                f"gateway ttft {g.ttft_s * 1000:.1f} ms, {g.tokens_per_s:.1f} tok/s, {g.tokens}"
            )
    d_tps, g_tps = median(direct, "tokens_per_s"), median(through, "tokens_per_s")
    d_ttft, g_ttft = median(direct, "ttft_s") * 1000, median(through, "ttft_s") * 1000
    print(f"\n{model.id} ({path.name}, {path.stat().st_size / 2**20:.0f} MB file)\n")
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
    print(
        f"| RSS added by the load (n_ctx {N_CTX}) | {after - before:.0f} MB "
        f"({before:.0f} → {after:.0f} MB) | | |"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--gemma", action="store_true", help="also the base model Gemma 3 270M")
    parser.add_argument("--verbose", action="store_true", help="print every round")
    parser.add_argument("--rss-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        before = rss_mb(os.getpid())
        llm = load(args.rss_child)
        after = rss_mb(os.getpid())
        print(f"{before:.1f} {after:.1f} ({llm.n_ctx()} context)")
        return

    data_dir = Path(tempfile.mkdtemp(prefix="modelyard-bench-"))
    gateway = start_gateway(data_dir)
    try:
        for name in ["smollm2", "gemma"] if args.gemma else ["smollm2"]:
            bench_model(gateway, MODELS[name], data_dir, args.rounds, args.tokens, args.verbose)
    finally:
        gateway.stop()


if __name__ == "__main__":
    main()
