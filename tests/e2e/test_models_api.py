"""GET /v1/models, a model's endpoints, /health and /openapi.json."""

from __future__ import annotations

import httpx
import openai

from tests.e2e.conftest import MODEL
from tests.e2e.server import RunningGateway

EMBEDDING_MODEL = "sentence-transformers/all-minilm-l6-v2"


def test_models_list_in_openai_shape_with_openrouter_fields(client: openai.OpenAI) -> None:
    models = {m.id: m for m in client.models.list()}
    assert {MODEL, "anthropic/claude-3.5-haiku", "anthropic/claude-haiku-4.5"} <= set(models)
    haiku = models["anthropic/claude-3.5-haiku"].model_extra
    assert haiku is not None
    assert haiku["context_length"] == 200000
    assert haiku["architecture"]["input_modalities"] == ["text", "image"]
    assert haiku["pricing"]["prompt"] == "0.0000008"
    assert haiku["pricing"]["completion"] == "0.000004"
    assert haiku["top_provider"]["max_completion_tokens"] == 8192
    assert "tools" in haiku["supported_parameters"]


def test_an_embedding_model_is_described_as_one(
    client: openai.OpenAI, gateway: RunningGateway
) -> None:
    listed = {m.id: m.model_extra for m in client.models.list()}[EMBEDDING_MODEL]
    assert listed is not None
    assert listed["architecture"]["modality"] == "text->embeddings"
    assert listed["architecture"]["input_modalities"] == ["text"]
    assert listed["architecture"]["output_modalities"] == ["embeddings"]
    assert listed["pricing"]["prompt"] == "0"
    assert listed["context_length"] == 256
    # It takes the embeddings parameters, not chat sampling, and generates no tokens.
    assert listed["supported_parameters"] == ["dimensions", "encoding_format"]
    assert listed["top_provider"]["max_completion_tokens"] is None
    chat = {m.id: m.model_extra for m in client.models.list()}[MODEL]
    assert chat is not None and chat["architecture"]["output_modalities"] == ["text"]
    assert "temperature" in chat["supported_parameters"]

    # OpenRouter's filter: output_modalities=embeddings lists it alone.
    only = httpx.get(gateway.api_url + "/models", params={"output_modalities": "embeddings"})
    assert [m["id"] for m in only.json()["data"]] == [EMBEDDING_MODEL]
    sampling = httpx.get(gateway.api_url + "/models", params={"supported_parameters": "tools"})
    assert EMBEDDING_MODEL not in {m["id"] for m in sampling.json()["data"]}

    body = httpx.get(f"{gateway.api_url}/models/{EMBEDDING_MODEL}/endpoints").json()["data"]
    assert body["architecture"]["modality"] == "text->embeddings"
    (endpoint,) = body["endpoints"]
    assert endpoint["max_completion_tokens"] is None
    assert endpoint["supported_parameters"] == ["dimensions", "encoding_format"]
    assert endpoint["supports_tool_choice"] == dict.fromkeys(
        ("auto", "none", "required", "function"), False
    )
    assert endpoint["supports_implicit_caching"] is False
    # /api/v1 is the same API under OpenRouter's prefix.
    openrouter = httpx.get(f"{gateway.base_url}/api/v1/models/{EMBEDDING_MODEL}/endpoints")
    assert openrouter.json()["data"] == body


def test_retrieve_one_model(client: openai.OpenAI) -> None:
    model = client.models.retrieve(MODEL)
    assert model.id == MODEL


def test_endpoints_list_each_provider_with_null_stats(gateway: RunningGateway) -> None:
    body = httpx.get(gateway.api_url + "/models/anthropic/claude-3.5-haiku/endpoints").json()
    endpoints = body["data"]["endpoints"]
    assert [e["tag"] for e in endpoints] == ["anthropic", "openrouter", "heroku", "vercel"]
    for endpoint in endpoints:
        assert endpoint["context_length"] == 200000
        assert endpoint["uptime_last_30m"] is None
        assert endpoint["latency_last_30m"] is None
    local = httpx.get(gateway.api_url + "/models/google/gemma-3-270m/endpoints").json()
    assert local["data"]["endpoints"][0]["quantization"] == "q4_k_m"
    missing = httpx.get(gateway.api_url + "/models/nope/nope/endpoints")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == 404


def test_health_and_openapi(gateway: RunningGateway) -> None:
    assert httpx.get(gateway.base_url + "/health").json() == {"status": "ok"}
    spec = httpx.get(gateway.base_url + "/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    chat = spec["paths"]["/v1/chat/completions"]["post"]
    ref = chat["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert "messages" in schema["required"]
    assert "temperature" in schema["properties"]


def test_metrics_count_requests_tokens_and_ledger_queue(
    gateway: RunningGateway, client: openai.OpenAI
) -> None:
    def sample(text: str, name: str) -> float:
        for line in text.splitlines():
            if line.startswith(name):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    ok = f'modelyard_requests_total{{model="{MODEL}",provider="local",status="200"'
    before = httpx.get(gateway.base_url + "/metrics").text
    reply = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=3
    )
    after = httpx.get(gateway.base_url + "/metrics").text
    assert sample(after, ok) == sample(before, ok) + 1
    completion = f'modelyard_tokens_total{{kind="completion",model="{MODEL}"'
    assert reply.usage is not None
    gained = sample(after, completion) - sample(before, completion)
    assert gained == reply.usage.completion_tokens
    assert "modelyard_time_to_first_token_seconds_bucket" in after
    assert "modelyard_ledger_queue_depth" in after
