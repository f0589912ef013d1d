"""The numpy all-MiniLM-L6-v2 itself: reference vectors, batching, the tokenizer's paths."""

from __future__ import annotations

import random

import numpy as np
import pytest
from bench.embeddings import PAIRS

from modelyard.providers.local.embedding_engine import BertEmbedder, _ascii_split, _basic_split
from modelyard.providers.local.model_file import resolve_embedder_dir


@pytest.fixture(scope="module")
def embedder(tmp_path_factory: pytest.TempPathFactory) -> BertEmbedder:
    directory = resolve_embedder_dir("builtin:all-minilm-l6-v2", tmp_path_factory.mktemp("e"))
    model = BertEmbedder(directory, max_tokens=256)
    model.load()
    return model


def embed(model: BertEmbedder, texts: list[str]) -> np.ndarray:
    return np.asarray(model.embed([model.with_specials(model.tokenizer.encode(t)) for t in texts]))


# The first components of each vector. "hello world": what sentence-transformers (PyTorch)
# gives for this model; the others: the earlier padded-batch implementation.
REFERENCE = {
    "hello world": [-0.03447727, 0.03102317, 0.00673496, 0.02610895, -0.03936205, -0.16030244],
    "Héllo, World!": [-0.038177, 0.032911, -0.005459, 0.01437, -0.040291, -0.116533],
    PAIRS[3][1]: [0.00538, 0.046651, 0.007987, 0.057524, 0.018849, -0.001631],
    "word " * 200: [-0.001924, -0.086399, -0.039552, 0.036843, -0.047594, 0.028362],
}


def test_vectors_match_reference_values(embedder: BertEmbedder) -> None:
    vectors = embed(embedder, list(REFERENCE))
    assert vectors.dtype == np.float64  # list[float] from float32 products
    np.testing.assert_allclose(vectors[:, :6], list(REFERENCE.values()), atol=2e-6)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_a_batch_gives_the_vectors_of_one_input_at_a_time(embedder: BertEmbedder) -> None:
    # Short and long inputs in one request: several attention buckets and, with the long
    # ones (over 2,048 tokens together), more than one packed forward passes.
    rng = random.Random(7)
    long = [" ".join(rng.choice(PAIRS)[1] for _ in range(12))[:1000] for _ in range(20)]
    texts = [q for q, _ in PAIRS] + long + [d for _, d in PAIRS] + ["a", "hello world"]
    lengths = [len(embedder.tokenizer.encode(t)) + 2 for t in texts]
    assert sum(lengths) > 2048 and max(lengths) <= 256 and min(lengths) == 3
    batch = embed(embedder, texts)
    one_by_one = np.asarray([embed(embedder, [t])[0] for t in texts])
    np.testing.assert_allclose(batch, one_by_one, atol=1e-5)
    shuffled = list(range(len(texts)))
    rng.shuffle(shuffled)
    again = embed(embedder, [texts[i] for i in shuffled])
    np.testing.assert_allclose(again, batch[shuffled], atol=1e-5)
    twice = embed(embedder, [texts[-1], *texts[:5], texts[-1]])
    assert np.array_equal(twice[0], twice[-1])


def test_the_ascii_split_is_the_general_split() -> None:
    rng = random.Random(3)
    alphabet = [chr(c) for c in range(128)] + list("    abcdefghij ABCDEF 0123 .,!?'")
    for _ in range(5000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(40)))
        assert _ascii_split(text) == _basic_split(text), repr(text)
    assert _ascii_split("Don't\x0bstop\r\nme,NOW") == ["don", "'", "tstop", "me", ",", "now"]


def test_repeated_words_encode_the_same(embedder: BertEmbedder) -> None:
    text = "Unbelievably, tokenization tokenizes tokenizers. Unbelievably!"
    first = embedder.tokenizer.encode(text)
    assert embedder.tokenizer.encode(text) == first
    assert first.count(first[0]) == 2 and len(first) > 10
