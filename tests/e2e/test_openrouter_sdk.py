"""OpenRouter's own TypeScript SDK (`@openrouter/sdk`) against the gateway's /api/v1.

The SDK checks every answer against OpenRouter's zod schemas, so a field that is missing,
mistyped or null where the schema has no null fails its call with a validation error.
A Node script (tests/e2e/node/openrouter_sdk_check.mjs) makes each call and prints a JSON
report: chat (plain, streamed, with tools, streamed with tools), the models list (whole
and one model a page), the model count, one model, its endpoints, the calling key, the
chat call's generation, and a wrong key. The model is served by an OpenAI-kind upstream
(tests/fakes/openai_chat.py), so the token counts can be compared with what it reported.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.node_tools import (
    Json,
    catalog_gateway,
    clean_env,
    ensure_npm_tool,
    new_app_key,
    one_model_catalog,
)
from tests.e2e.server import RunningGateway
from tests.fakes.openai_chat import FakeOpenAIChat

OPENROUTER_SDK = ("@openrouter/sdk", "1.3.19", None)
SCRIPT = Path(__file__).parent / "node" / "openrouter_sdk_check.mjs"
MODEL = "test/echo"
PROMPT_PRICE, COMPLETION_PRICE = Decimal(2), Decimal(8)  # USD per million tokens
SCRIPT_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeOpenAIChat]:
    with FakeOpenAIChat() as fake:
        yield fake


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, upstream: FakeOpenAIChat
) -> Iterator[RunningGateway]:
    catalog = one_model_catalog(
        upstream.base_url,
        MODEL,
        "echo-upstream",
        (PROMPT_PRICE, COMPLETION_PRICE),
        provider={"name": "Fake OpenAI", "region": "us"},
        name="Test: Echo",
        description="Echoes the last user message.",
        created="2025-01-02",
        context_length=32768,
        max_output=4096,
        tokenizer="Other",
    )
    with catalog_gateway(tmp_path_factory.mktemp("openrouter-sdk-gateway"), catalog) as running:
        yield running


@pytest.fixture(scope="module")
def app_key(gateway: RunningGateway) -> str:
    return new_app_key(gateway, "openrouter-sdk", MODEL, "OR")


@pytest.fixture(scope="module")
def report(gateway: RunningGateway, app_key: str) -> Json:
    sdk_dir = ensure_npm_tool(*OPENROUTER_SDK)
    env = clean_env(
        SDK_DIR=str(sdk_dir),
        SERVER_URL=gateway.base_url + "/api/v1",
        API_KEY=app_key,
        MODEL=MODEL,
    )
    done = subprocess.run(
        ["node", str(SCRIPT)],
        capture_output=True,
        text=True,
        env=env,
        timeout=SCRIPT_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, f"node exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    result: Json = json.loads(done.stdout)
    return result


def _value(report: Json, call: str) -> Any:
    outcome = report[call]
    assert outcome["ok"], f"{call} failed in the SDK:\n{json.dumps(outcome['error'], indent=2)}"
    return outcome["value"]


def _cost(prompt: int, completion: int) -> float:
    return float((prompt * PROMPT_PRICE + completion * COMPLETION_PRICE) / 1_000_000)


CALLS = [
    "chat",
    "chat_stream",
    "chat_tools",
    "chat_tools_stream",
    "models_list",
    "models_list_paged",
    "models_count",
    "model_get",
    "endpoints_list",
    "key",
    "generation",
]


@pytest.mark.parametrize("call", CALLS)
def test_every_call_passes_the_sdk_schema(report: Json, call: str) -> None:
    _value(report, call)


def test_chat_answer_and_usage(report: Json, upstream: FakeOpenAIChat) -> None:
    chat = _value(report, "chat")
    assert chat["id"].startswith("gen-") and chat["object"] == "chat.completion"
    assert chat["model"] == MODEL
    (choice,) = chat["choices"]
    assert choice["message"] == {
        "role": "assistant",
        "content": "Echo: hello there",
        "refusal": None,
    }
    assert choice["finishReason"] == "stop"
    sent = upstream.usages[0]
    assert chat["usage"]["promptTokens"] == sent["prompt_tokens"]
    assert chat["usage"]["completionTokens"] == sent["completion_tokens"] == 3
    assert chat["usage"]["totalTokens"] == sent["total_tokens"]
    assert chat["usage"]["cost"] == pytest.approx(_cost(sent["prompt_tokens"], 3))


def test_stream_chunks_carry_the_text_and_end_with_usage(
    report: Json, upstream: FakeOpenAIChat
) -> None:
    chunks = _value(report, "chat_stream")
    assert {c["id"] for c in chunks} == {chunks[0]["id"]}
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == MODEL for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "Echo: stream this please"
    finishes = [c["choices"][0]["finishReason"] for c in chunks if c["choices"]]
    assert finishes[-1] == "stop" and set(finishes[:-1]) == {None}
    usage = chunks[-1]["usage"]
    assert chunks[-1]["choices"] == []
    assert usage["promptTokens"] == upstream.usages[1]["prompt_tokens"]
    assert usage["completionTokens"] == 4


def test_tool_calls_plain_and_streamed(report: Json) -> None:
    chat = _value(report, "chat_tools")
    (choice,) = chat["choices"]
    assert choice["finishReason"] == "tool_calls"
    (call,) = choice["message"]["toolCalls"]
    assert call["type"] == "function" and call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "sample"}

    chunks = _value(report, "chat_tools_stream")
    pieces = [
        tc for c in chunks if c["choices"] for tc in c["choices"][0]["delta"].get("toolCalls", [])
    ]
    assert pieces[0]["id"].startswith("call_") and pieces[0]["function"]["name"] == "get_weather"
    arguments = "".join(p["function"].get("arguments", "") for p in pieces)
    assert json.loads(arguments) == {"city": "sample"}
    assert [c["choices"][0]["finishReason"] for c in chunks if c["choices"]][-1] == "tool_calls"


def test_models_list_count_and_pages_agree(report: Json) -> None:
    (whole,) = _value(report, "models_list")
    ids = [m["id"] for m in whole["data"]]
    assert MODEL in ids and "anthropic/claude-haiku-4.5" in ids
    assert whole["totalCount"] == len(ids) and whole["links"] == {"next": None}
    assert _value(report, "models_count")["data"] == {"count": len(ids)}

    pages = _value(report, "models_list_paged")
    # One model a page, then the empty page past the end that tells the SDK to stop.
    assert [len(p["data"]) for p in pages] == [1] * len(ids) + [0]
    assert [p["data"][0]["id"] for p in pages[:-1]] == ids
    assert all(p["totalCount"] == len(ids) for p in pages)
    following = httpx.URL(pages[0]["links"]["next"])
    assert following.path == "/api/v1/models"
    assert dict(following.params) == {"offset": "1", "limit": "1"}
    assert pages[-2]["links"]["next"] is None

    model = next(m for m in whole["data"] if m["id"] == MODEL)
    assert model["name"] == "Test: Echo" and model["canonicalSlug"] == MODEL
    assert model["links"] == {"details": f"/api/v1/models/{MODEL}/endpoints"}
    assert model["architecture"]["tokenizer"] == "Other"
    assert model["contextLength"] == 32768
    assert model["pricing"]["prompt"] == "0.000002" and model["pricing"]["completion"] == "0.000008"
    assert model["topProvider"] == {
        "contextLength": 32768,
        "maxCompletionTokens": 4096,
        "isModerated": False,
    }
    assert model["defaultParameters"] is None and model["perRequestLimits"] is None


def test_one_model_and_its_endpoints(report: Json) -> None:
    model = _value(report, "model_get")["data"]
    assert model["id"] == MODEL and model["description"] == "Echoes the last user message."

    listed = _value(report, "endpoints_list")["data"]
    assert listed["id"] == MODEL and listed["architecture"]["tokenizer"] == "Other"
    (endpoint,) = listed["endpoints"]
    assert endpoint["modelId"] == MODEL and endpoint["modelName"] == "Test: Echo"
    assert endpoint["tag"] == "fake-openai" and endpoint["providerName"] == "Fake OpenAI"
    assert endpoint["contextLength"] == 32768 and endpoint["maxCompletionTokens"] == 4096
    assert endpoint["supportsToolChoice"] == {
        "auto": True,
        "none": True,
        "required": True,
        "function": True,
    }
    assert endpoint["supportsImplicitCaching"] is False
    assert "tools" in endpoint["supportedParameters"]


def test_key_reports_the_spend_of_the_chat_calls(report: Json, upstream: FakeOpenAIChat) -> None:
    key = _value(report, "key")["data"]
    assert key["limit"] is None and key["limitRemaining"] is None and key["limitReset"] is None
    assert key["isFreeTier"] is False and key["isManagementKey"] is False
    assert key["byokUsage"] == 0 and key["includeByokInLimit"] is True
    assert key["rateLimit"]["requests"] == -1
    # The key is read after the four chat calls; their rows may still be on their way
    # to the ledger, so the spend is at most theirs.
    spent = sum(_cost(u["prompt_tokens"], u["completion_tokens"]) for u in upstream.usages[:4])
    assert 0 <= key["usage"] <= spent + 1e-12
    assert key["usageDaily"] == key["usage"]


def test_generation_is_the_chat_call(report: Json, upstream: FakeOpenAIChat) -> None:
    chat = _value(report, "chat")
    row = _value(report, "generation")["data"]
    sent = upstream.usages[0]
    assert row["id"] == chat["id"] and row["model"] == MODEL
    assert row["providerName"] == "fake-openai" and row["apiType"] == "completions"
    assert row["tokensPrompt"] == row["nativeTokensPrompt"] == sent["prompt_tokens"]
    assert row["tokensCompletion"] == sent["completion_tokens"]
    assert row["totalCost"] == row["usage"] == pytest.approx(chat["usage"]["cost"])
    assert row["streamed"] is False and row["cancelled"] is False and row["isByok"] is False
    assert row["finishReason"] == "stop" and row["appId"] is None
    assert row["dataRegion"] == "us"
    (attempt,) = row["providerResponses"]
    assert attempt["status"] == 200 and attempt["providerName"] == "fake-openai"


def test_a_wrong_key_raises_the_sdks_auth_error(report: Json) -> None:
    outcome = report["wrong_key"]
    assert not outcome["ok"]
    assert outcome["error"]["name"] == "UnauthorizedResponseError", outcome["error"]
    assert outcome["error"]["status"] == 401
