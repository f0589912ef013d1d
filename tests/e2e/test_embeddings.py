"""/v1/embeddings over the wire with the openai SDK, against OpenAI-kind fake upstreams.

Two fakes serve the embedding model "fake/embed" (the second for fallback); "fake/chat"
is a chat model on the first. Vectors come from the fake's hash of each input
(tests/fakes/openai_chat.py `fake_vector`), so the gateway's answer can be compared with
what the upstream sent.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator

import httpx
import numpy as np
import openai
import pytest

from tests.e2e.server import RunningGateway, start_gateway
from tests.fakes.openai_chat import FakeOpenAIChat, fake_vector

EMBED, CHAT = "fake/embed", "fake/chat"
PRICE = 0.5  # USD per million input tokens
KEYS: dict[str, str] = {}  # model id → its attachment's key (a key covers one model)
ORDER = {"provider": {"order": ["fake-a", "fake-b"], "allow_fallbacks": True}}


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[FakeOpenAIChat, FakeOpenAIChat]]:
    with FakeOpenAIChat() as first, FakeOpenAIChat() as second:
        yield first, second


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, fakes: tuple[FakeOpenAIChat, FakeOpenAIChat]
) -> Iterator[RunningGateway]:
    home = tmp_path_factory.mktemp("embeddings-gateway")
    first, second = fakes
    catalog = home / "catalog.toml"
    catalog.write_text(
        f"""
[[providers]]
id = "fake-a"
kind = "openai"
base_url = "{first.base_url}"

[[providers]]
id = "fake-b"
kind = "openai"
base_url = "{second.base_url}"

[[models]]
id = "{EMBED}"
name = "An embedding model"
type = "embedding"
dimensions = 8
context_length = 8192
max_output = 1

[[models.endpoints]]
provider = "fake-a"
upstream_model = "embed-a"
price = {{ prompt = {PRICE}, completion = 0 }}

[[models.endpoints]]
provider = "fake-b"
upstream_model = "embed-b"
price = {{ prompt = {PRICE}, completion = 0 }}

[[models]]
id = "{CHAT}"
name = "A chat model"
context_length = 32000
max_output = 4096

[[models.endpoints]]
provider = "fake-a"
upstream_model = "chat-a"
price = {{ prompt = 1.0, completion = 2.0 }}
"""
    )
    running = start_gateway(
        home / "data",
        extra_args=["--catalog", str(catalog)],
        env={"MODELYARD_LOAD_LOCAL": "0"},
    )
    headers = {"Authorization": f"Bearer {running.admin_key}"}
    for model, alias in ((EMBED, "EMBEDDING"), (CHAT, "CHAT")):
        attached = httpx.post(
            f"{running.base_url}/admin/apps/default/models",
            json={"model": model, "alias": alias},
            headers=headers,
        )
        assert attached.status_code in (200, 201), attached.text
        KEYS[model] = attached.json()["config"][f"{alias}_KEY"]
    yield running
    running.stop()


@pytest.fixture
def client(gateway: RunningGateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.api_url, api_key=KEYS[EMBED], max_retries=0)


def embed(client: openai.OpenAI, **kwargs: object) -> openai.types.CreateEmbeddingResponse:
    return client.embeddings.create(model=EMBED, extra_body=ORDER, **kwargs)  # type: ignore[arg-type]


def test_one_text_is_the_upstreams_vector(
    client: openai.OpenAI, fakes: tuple[FakeOpenAIChat, FakeOpenAIChat]
) -> None:
    answer = embed(client, input="the quick brown fox", encoding_format="float")
    assert [item.embedding for item in answer.data] == [fake_vector("the quick brown fox")]
    assert answer.model == EMBED
    assert answer.usage.prompt_tokens == 4
    assert fakes[0].last_body["model"] == "embed-a"


def test_base64_decodes_to_the_same_floats(client: openai.OpenAI) -> None:
    answer = embed(client, input="hello there", encoding_format="base64")
    raw = answer.data[0].embedding
    assert isinstance(raw, str)
    decoded = np.frombuffer(base64.b64decode(raw), dtype="<f4").tolist()
    assert decoded == fake_vector("hello there")


def test_sdk_default_base64_is_decoded_by_the_sdk(client: openai.OpenAI) -> None:
    # The SDK asks for base64 when no format is given and decodes it itself.
    answer = embed(client, input="hello there")
    assert answer.data[0].embedding == fake_vector("hello there")


def test_a_batch_keeps_its_order(client: openai.OpenAI) -> None:
    texts = [f"text number {i}" for i in range(20)]
    answer = embed(client, input=texts, encoding_format="float")
    assert [item.index for item in answer.data] == list(range(20))
    assert [item.embedding for item in answer.data] == [fake_vector(t) for t in texts]


def test_token_ids_reach_the_upstream(
    client: openai.OpenAI, fakes: tuple[FakeOpenAIChat, FakeOpenAIChat]
) -> None:
    answer = embed(client, input=[[1, 2, 3], [4, 5]], encoding_format="float")
    assert fakes[0].last_body["input"] == [[1, 2, 3], [4, 5]]
    assert [item.embedding for item in answer.data] == [fake_vector([1, 2, 3]), fake_vector([4, 5])]
    assert answer.usage.prompt_tokens == 5


def test_dimensions_input_type_and_user_reach_the_upstream(
    client: openai.OpenAI, fakes: tuple[FakeOpenAIChat, FakeOpenAIChat]
) -> None:
    answer = client.embeddings.create(
        model=EMBED,
        input="search me",
        dimensions=4,
        user="user-7",
        encoding_format="float",
        extra_body={**ORDER, "input_type": "search_query"},
    )
    body = fakes[0].last_body
    assert (body["dimensions"], body["user"], body["input_type"]) == (4, "user-7", "search_query")
    assert answer.data[0].embedding == fake_vector("search me", 4)


def test_usage_and_cost_in_the_answer_and_the_ledger(
    client: openai.OpenAI, gateway: RunningGateway
) -> None:
    raw = client.embeddings.with_raw_response.create(
        model=EMBED, input="one two three four five six", encoding_format="float", extra_body=ORDER
    )
    body = raw.http_response.json()
    cost = 6 * PRICE / 1_000_000
    assert body["usage"]["prompt_tokens"] == 6
    assert body["usage"]["cost"] == pytest.approx(cost)
    headers = {"Authorization": f"Bearer {KEYS[EMBED]}"}
    row = None
    for _ in range(50):  # the ledger writes off the request path
        reply = httpx.get(
            gateway.api_url + "/generation", params={"id": body["id"]}, headers=headers
        )
        if reply.status_code == 200:
            row = reply.json()["data"]
            break
        time.sleep(0.1)
    assert row is not None, "the generation never reached the ledger"
    assert row["model"] == EMBED
    assert row["api_type"] == "embeddings"
    assert row["tokens_prompt"] == 6
    assert row["total_cost"] == pytest.approx(cost)


def new_key(gateway: RunningGateway, **fields: object) -> str:
    """A key of the app's for every model, with these limits."""
    headers = {"Authorization": f"Bearer {gateway.admin_key}"}
    reply = httpx.post(f"{gateway.base_url}/admin/apps/default/keys", json=fields, headers=headers)
    assert reply.status_code == 201, reply.text
    return str(reply.json()["key"])


def test_a_keys_rpm_limits_embeddings_as_it_limits_chat(gateway: RunningGateway) -> None:
    limited = openai.OpenAI(
        base_url=gateway.api_url, api_key=new_key(gateway, rpm=2), max_retries=0
    )
    for left in ("1", "0"):
        raw = limited.embeddings.with_raw_response.create(
            model=EMBED, input="counted", extra_body=ORDER
        )
        assert raw.headers["x-ratelimit-limit-requests"] == "2"
        assert raw.headers["x-ratelimit-remaining-requests"] == left
    with pytest.raises(openai.RateLimitError) as caught:
        limited.embeddings.create(model=EMBED, input="one too many", extra_body=ORDER)
    assert 1 <= int(caught.value.response.headers["retry-after"]) <= 60
    assert "2 requests" in caught.value.message


def test_a_spent_budget_refuses_embeddings_with_a_402(gateway: RunningGateway) -> None:
    # 40 words are 40 tokens at the fake: $0.00002 spent of $0.00004. The reservation counts
    # the input generously (56 tokens here, $0.000028), so the same input no longer fits.
    spender = openai.OpenAI(
        base_url=gateway.api_url, api_key=new_key(gateway, limit=0.00004), max_retries=0
    )
    words = " ".join(["word"] * 40)
    spender.embeddings.create(model=EMBED, input=words, extra_body=ORDER)
    with pytest.raises(openai.APIStatusError) as caught:
        spender.embeddings.create(model=EMBED, input=words, extra_body=ORDER)
    assert caught.value.status_code == 402
    assert "its input alone" in caught.value.message
    assert "$0.00004" in caught.value.message
