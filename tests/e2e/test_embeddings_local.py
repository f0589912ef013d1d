"""The embedded embedding model (all-MiniLM-L6-v2) over the wire with the openai SDK.

The default catalog has it; the app "default" is given it through the admin API.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import numpy as np
import openai
import pytest
from bench.embeddings import MODEL_ID, PAIRS

from tests.e2e.server import RunningGateway, start_gateway

DIMENSIONS = 384
KEYS: dict[str, str] = {}  # gateway base URL → the embedding model's key


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    running = start_gateway(tmp_path_factory.mktemp("local-embeddings") / "data")
    headers = {"Authorization": f"Bearer {running.admin_key}"}
    attached = httpx.post(
        f"{running.base_url}/admin/apps/default/models",
        json={"model": MODEL_ID, "alias": "EMBEDDINGS"},
        headers=headers,
    )
    assert attached.status_code in (200, 201), attached.text
    # The attachment's own key: the app's first key covers only the chat model.
    KEYS[running.base_url] = attached.json()["config"]["EMBEDDINGS_KEY"]
    yield running
    running.stop()


@pytest.fixture
def client(gateway: RunningGateway) -> openai.OpenAI:
    key = KEYS[gateway.base_url]
    return openai.OpenAI(base_url=gateway.api_url, api_key=key, max_retries=0)


def floats(client: openai.OpenAI, texts: list[str]) -> np.ndarray:
    answer = client.embeddings.create(model=MODEL_ID, input=texts, encoding_format="float")
    return np.asarray([item.embedding for item in answer.data])


def test_float_vectors_are_unit_length_with_real_usage(client: openai.OpenAI) -> None:
    answer = client.embeddings.create(model=MODEL_ID, input="hello world", encoding_format="float")
    vector = np.asarray(answer.data[0].embedding)
    assert vector.shape == (DIMENSIONS,)
    assert abs(np.linalg.norm(vector) - 1.0) < 1e-4
    assert answer.usage.prompt_tokens == 4  # [CLS] hello world [SEP]


def test_base64_decodes_to_the_float_vector(client: openai.OpenAI) -> None:
    text = "the quick brown fox"
    raw = client.embeddings.create(model=MODEL_ID, input=text, encoding_format="base64")
    encoded = raw.data[0].embedding
    assert isinstance(encoded, str)
    decoded = np.frombuffer(base64.b64decode(encoded), dtype="<f4")
    np.testing.assert_allclose(decoded, floats(client, [text])[0], atol=1e-6)


def test_a_batch_keeps_its_order_and_equal_texts_get_equal_vectors(client: openai.OpenAI) -> None:
    long = " ".join(d for _, d in PAIRS[:8])  # ~150 tokens among short ones
    texts = [q for q, _ in PAIRS[:10]] + [long, PAIRS[1][1], PAIRS[0][0]]
    batch = floats(client, texts)
    one_by_one = np.asarray([floats(client, [t])[0] for t in texts])
    np.testing.assert_allclose(batch, one_by_one, atol=1e-5)
    assert np.array_equal(batch[0], batch[-1])


def test_token_ids_are_taken(client: openai.OpenAI) -> None:
    # 7592, 2088: "hello", "world" in the model's WordPiece vocabulary.
    by_ids = client.embeddings.create(model=MODEL_ID, input=[[7592, 2088]], encoding_format="float")
    np.testing.assert_allclose(
        by_ids.data[0].embedding, floats(client, ["hello world"])[0], atol=1e-5
    )


def test_related_texts_are_closer(client: openai.OpenAI) -> None:
    a, b, c = floats(client, ["A man is eating food.", "A man eats bread.", "The sky is blue."])
    assert a @ b > a @ c + 0.3


def test_an_overlong_input_is_a_400_naming_it(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model=MODEL_ID, input=["short", "word " * 300])
    assert "input[1]" in str(caught.value) and "256" in str(caught.value)


def test_other_dimensions_are_a_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model=MODEL_ID, input="hi", dimensions=128)
    assert "dimensions" in str(caught.value)
    same = client.embeddings.create(
        model=MODEL_ID, input="hi", dimensions=DIMENSIONS, encoding_format="float"
    )
    assert len(same.data[0].embedding) == DIMENSIONS


def test_recall_at_1_on_the_retrieval_set(client: openai.OpenAI) -> None:
    queries = floats(client, [q for q, _ in PAIRS])
    documents = floats(client, [d for _, d in PAIRS])
    recall = float(((queries @ documents.T).argmax(axis=1) == np.arange(len(PAIRS))).mean())
    assert recall >= 0.9  # measured: 1.0 (bench/embeddings.py)
