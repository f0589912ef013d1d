"""The embedded embedding model's quality and speed.

Quality: recall@1 on a small retrieval set written for this project (24 queries, one right
document each among 24 short documents), embedded in-process. Speed: embeddings a second for
a batch of 32 short texts, in-process and through a gateway with the openai SDK; the model's
memory (RSS of a fresh process before and after loading it).

    .venv/bin/python -m bench.embeddings          # in-process only
    .venv/bin/python -m bench.embeddings --gateway  # also through a gateway it starts
    .venv/bin/python -m bench.embeddings --against REV  # and the engine at a git revision
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.procs import child_rss, rss_mb
from modelyard.providers.local.embedding_engine import BertEmbedder
from modelyard.providers.local.model_file import resolve_embedder_dir

MODEL_ID = "sentence-transformers/all-minilm-l6-v2"

# (query, its one right document); every document is a candidate for every query.
PAIRS: list[tuple[str, str]] = [
    (
        "How do I reset my password?",
        "To change a forgotten password, click 'Forgot password' on the sign-in page.",
    ),
    ("What is the capital of France?", "Paris is the capital and largest city of France."),
    ("How tall is Mount Everest?", "Mount Everest rises 8,849 metres above sea level."),
    (
        "When did the Second World War end?",
        "The Second World War ended in 1945 with the surrender of Japan.",
    ),
    ("What do pandas eat?", "Giant pandas feed almost entirely on bamboo shoots and leaves."),
    (
        "How do I boil an egg?",
        "Place the egg in boiling water for eight minutes, then cool it in cold water.",
    ),
    (
        "Which planet is closest to the sun?",
        "Mercury is the smallest planet and the nearest to the Sun.",
    ),
    (
        "Who wrote Romeo and Juliet?",
        "William Shakespeare wrote the tragedy Romeo and Juliet around 1595.",
    ),
    (
        "How does photosynthesis work?",
        "Plants use sunlight, water and carbon dioxide to make glucose and oxygen.",
    ),
    (
        "What is the speed of light?",
        "Light travels through a vacuum at about 299,792 kilometres per second.",
    ),
    (
        "How can I improve my sleep?",
        "Keeping a regular bedtime and avoiding screens at night helps you sleep better.",
    ),
    (
        "What causes rain?",
        "Water vapour condenses into droplets in clouds and falls as precipitation.",
    ),
    (
        "How do vaccines work?",
        "A vaccine trains the immune system to recognise a pathogen before infection.",
    ),
    ("What is the largest ocean?", "The Pacific is the biggest and deepest of Earth's oceans."),
    (
        "How do I make my code run faster in Python?",
        "Profiling a Python program shows which functions to optimise first.",
    ),
    (
        "Why is the sky blue?",
        "Air molecules scatter short blue wavelengths of sunlight more than red ones.",
    ),
    ("How many legs does a spider have?", "Spiders are arachnids with eight legs."),
    ("What is the boiling point of water?", "At sea level water boils at 100 degrees Celsius."),
    (
        "How do I train a puppy to sit?",
        "Hold a treat above the dog's nose and reward it when it lowers itself to sitting.",
    ),
    ("What currency is used in Japan?", "The yen is the official money of Japan."),
    (
        "How do bees make honey?",
        "Bees collect flower nectar and evaporate it in the hive's wax cells.",
    ),
    ("Where do kangaroos live?", "Kangaroos are marsupials native to Australia."),
    (
        "What is a black hole?",
        "A region of spacetime whose gravity is so strong that not even light escapes.",
    ),
    (
        "How do I fix a flat bicycle tyre?",
        "Remove the inner tube, find the puncture, patch it and inflate the tyre.",
    ),
]


def recall_at_1(embed: callable[[list[str]], np.ndarray]) -> float:  # type: ignore[valid-type]
    queries = embed([q for q, _ in PAIRS])
    documents = embed([d for _, d in PAIRS])
    best = (queries @ documents.T).argmax(axis=1)
    return float((best == np.arange(len(PAIRS))).mean())


def local_embedder(data_dir: Path) -> BertEmbedder:
    embedder = BertEmbedder(
        resolve_embedder_dir("builtin:all-minilm-l6-v2", data_dir), max_tokens=256
    )
    embedder.load()
    return embedder


def embed_texts(embedder: BertEmbedder, texts: list[str]) -> np.ndarray:
    ids = [embedder.with_specials(embedder.tokenizer.encode(t)) for t in texts]
    return np.asarray(embedder.embed(ids))


BATCH = [f"{q} {d}" for q, d in PAIRS[:16]] + [q for q, _ in PAIRS[:16]]


def per_second(run: callable[[], object], rounds: int = 10) -> float:  # type: ignore[valid-type]
    run()
    start = time.perf_counter()
    for _ in range(rounds):
        run()
    return rounds * len(BATCH) / (time.perf_counter() - start)


def against(revision: str, data_dir: Path, rounds: int = 3) -> None:
    """This engine and the one at a git revision, timed in turn on the same batch."""
    source = subprocess.run(
        ["git", "show", f"{revision}:src/modelyard/providers/local/embedding_engine.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = data_dir / "engine_then.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("engine_then", path)
    assert spec is not None and spec.loader is not None
    then = importlib.util.module_from_spec(spec)
    sys.modules["engine_then"] = then  # dataclasses look their module up
    spec.loader.exec_module(then)
    old = then.BertEmbedder(
        resolve_embedder_dir("builtin:all-minilm-l6-v2", data_dir), max_tokens=256
    )
    old.load()
    now = local_embedder(data_dir)
    for _ in range(rounds):
        was = per_second(lambda: embed_texts(old, BATCH))
        new = per_second(lambda: embed_texts(now, BATCH))
        print(f"in-process, embeddings/s (batch of 32): {revision} {was:.0f}, now {new:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gateway", action="store_true")
    parser.add_argument("--against", metavar="REV", help="also time the engine at a git rev")
    parser.add_argument("--rss-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.against:
        with tempfile.TemporaryDirectory() as tmp:
            against(args.against, Path(tmp))
        return
    if args.rss_child:
        before = rss_mb(os.getpid())
        loaded = local_embedder(args.rss_child)
        after = rss_mb(os.getpid())
        print(f"{before:.1f} {after:.1f} ({loaded.dimensions} dimensions)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        embedder = local_embedder(Path(tmp))
        before, after = child_rss("bench.embeddings", Path(tmp))
        print(f"RSS before load {before:.0f} MB, after {after:.0f} MB (+{after - before:.0f} MB)")
        recall = recall_at_1(lambda t: embed_texts(embedder, t))
        print(f"recall@1 {recall:.3f} on {len(PAIRS)} queries")
        rate = per_second(lambda: embed_texts(embedder, BATCH))
        print(f"in-process: {rate:.0f} embeddings/s (batch of 32)")
        if args.gateway:
            import httpx
            import openai
            from tests.e2e.server import start_gateway

            gw = start_gateway(Path(tmp) / "gw", env={"MODELYARD_LOAD_LOCAL": "1"})
            try:
                headers = {"Authorization": f"Bearer {gw.admin_key}"}
                attached = httpx.post(
                    f"{gw.base_url}/admin/apps/default/models",
                    json={"model": MODEL_ID, "alias": "EMBEDDINGS"},
                    headers=headers,
                )
                attached.raise_for_status()
                # The attachment's own key: the app's first key covers only the chat model.
                key = attached.json()["config"]["EMBEDDINGS_KEY"]
                client = openai.OpenAI(base_url=gw.api_url, api_key=key, max_retries=0)
                rate = per_second(
                    lambda: client.embeddings.create(
                        model=MODEL_ID, input=BATCH, encoding_format="base64"
                    )
                )
                print(f"gateway (openai SDK, base64): {rate:.0f} embeddings/s (batch of 32)")
            finally:
                gw.stop()


if __name__ == "__main__":
    main()
