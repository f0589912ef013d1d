"""LocalProvider.embed on the built-in all-MiniLM-L6-v2 (the model itself, in-process)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from bench.embeddings import MODEL_ID, PAIRS

from modelyard.catalog.loader import load_catalog
from modelyard.errors import InvalidRequest
from modelyard.providers.local.provider import LocalProvider
from modelyard.schema.embeddings import EmbeddingsRequest


def run(tmp_path: Path, *requests: EmbeddingsRequest) -> list[object]:
    async def go() -> list[object]:
        catalog = load_catalog()
        only = {MODEL_ID: catalog.models[MODEL_ID]}
        catalog.models = only
        provider = LocalProvider(catalog, tmp_path)
        await provider.start()
        endpoint = only[MODEL_ID].endpoints[0]
        out: list[object] = []
        try:
            for request in requests:
                try:
                    out.append(await provider.embed(request, endpoint))
                except InvalidRequest as exc:
                    out.append(exc)
        finally:
            await provider.close()
        return out

    return asyncio.run(go())


def test_vectors_order_ids_limits_and_recall(tmp_path: Path) -> None:
    texts = [q for q, _ in PAIRS] + [d for _, d in PAIRS] + [PAIRS[0][0]]
    batch, ids, long, dims, one = run(
        tmp_path,
        EmbeddingsRequest(input=texts),
        EmbeddingsRequest(input=[[7592, 2088]]),
        EmbeddingsRequest(input=["short", "word " * 300]),
        EmbeddingsRequest(input="hi", dimensions=128),
        EmbeddingsRequest(input="hello world"),
    )
    vectors = np.asarray(batch.vectors)  # type: ignore[attr-defined]
    assert vectors.shape == (len(texts), 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert np.array_equal(vectors[0], vectors[-1])
    queries, documents = vectors[: len(PAIRS)], vectors[len(PAIRS) : 2 * len(PAIRS)]
    recall = float(((queries @ documents.T).argmax(axis=1) == np.arange(len(PAIRS))).mean())
    assert recall >= 0.9  # measured: 1.0
    np.testing.assert_allclose(ids.vectors[0], one.vectors[0], atol=1e-5)  # type: ignore[attr-defined]
    assert one.usage.prompt_tokens == 4  # type: ignore[attr-defined]
    assert isinstance(long, InvalidRequest) and "input[1]" in str(long) and "256" in str(long)
    assert isinstance(dims, InvalidRequest) and "dimensions" in str(dims)


@pytest.mark.parametrize("text", ["Héllo, World!"])
def test_wordpiece_lowercases_strips_accents_splits_punctuation(tmp_path: Path, text: str) -> None:
    from modelyard.providers.local.embedding_engine import WordPiece
    from modelyard.providers.local.model_file import resolve_embedder_dir

    tokenizer = WordPiece(resolve_embedder_dir("builtin:all-minilm-l6-v2", tmp_path) / "vocab.txt")
    assert tokenizer.encode(text) == [7592, 1010, 2088, 999]
