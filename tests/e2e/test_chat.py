"""Chat completions against the real embedded model, through the official openai SDK."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest
from llama_cpp import Llama

from modelyard.providers.local.model_file import resolve_model_path
from tests.e2e.conftest import MODEL

GGUF = "builtin:smollm2-135m-instruct"  # MODEL's file
HELLO = [{"role": "user", "content": "Write one sentence about the sea."}]


def test_plain_completion_has_openai_shape_and_generation_id(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=HELLO, max_tokens=24, seed=1
    )
    completion = raw.parse()
    assert completion.id.startswith("gen-")
    assert raw.headers["x-generation-id"] == completion.id
    assert completion.object == "chat.completion"
    assert completion.model == MODEL
    assert completion.model_extra is not None and completion.model_extra["provider"] == "local"
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert isinstance(choice.message.content, str) and choice.message.content.strip()
    assert choice.finish_reason in ("stop", "length")
    usage = completion.usage
    assert usage is not None
    assert usage.prompt_tokens > 5
    assert 0 < usage.completion_tokens <= 24
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.model_extra is not None and usage.model_extra["cost"] == 0
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens is not None


def test_alias_resolves_to_the_model_id(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model="smollm2", messages=HELLO, max_tokens=2)
    assert completion.model == MODEL


def test_max_tokens_cuts_with_finish_reason_length(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Tell me a very long story about a dragon."}],
        max_completion_tokens=5,
        seed=3,
    )
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None and completion.usage.completion_tokens == 5


def test_same_seed_same_output_and_different_seeds_differ(client: openai.OpenAI) -> None:
    def run(seed: int) -> str:
        completion = client.chat.completions.create(
            model=MODEL, messages=HELLO, max_tokens=30, seed=seed, temperature=1.0
        )
        return completion.choices[0].message.content or ""

    first = run(42)
    assert run(42) == first
    assert len({first, run(7), run(8), run(9)}) > 1


def test_stop_sequence_truncates_greedy_output(client: openai.OpenAI) -> None:
    free = (
        client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=30, temperature=0)
        .choices[0]
        .message.content
    )
    assert free and len(free) > 12
    stop = free[8:12]
    cut = client.chat.completions.create(
        model=MODEL, messages=HELLO, max_tokens=30, temperature=0, stop=[stop]
    ).choices[0]
    assert cut.message.content == free[: free.index(stop)]
    assert cut.finish_reason == "stop"


def test_logprobs_one_per_token_with_top_alternatives(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model=MODEL, messages=HELLO, max_tokens=6, logprobs=True, top_logprobs=3, seed=5
    )
    logprobs = completion.choices[0].logprobs
    assert logprobs is not None and logprobs.content is not None
    assert completion.usage is not None
    assert len(logprobs.content) == completion.usage.completion_tokens
    for item in logprobs.content:
        assert item.logprob <= 0
        assert len(item.top_logprobs) == 3
        assert item.top_logprobs[0].logprob >= item.top_logprobs[2].logprob


def test_logit_bias_bans_the_greedy_first_token(client: openai.OpenAI, data_dir: Path) -> None:
    def first_token(bias: dict[str, int] | None) -> str:
        completion = client.chat.completions.create(
            model=MODEL,
            messages=HELLO,
            max_tokens=1,
            temperature=0,
            logprobs=True,
            top_logprobs=1,
            logit_bias=bias,  # type: ignore[arg-type]
        )
        logprobs = completion.choices[0].logprobs
        assert logprobs is not None and logprobs.content
        return logprobs.content[0].token

    greedy = first_token(None)
    gguf = resolve_model_path(GGUF, data_dir, show_progress=False)
    vocab = Llama(model_path=str(gguf), vocab_only=True, verbose=False)
    ids = vocab.tokenize(greedy.encode(), add_bos=False, special=False)
    assert len(ids) == 1
    assert first_token({str(ids[0]): -100}) != greedy


def test_trailing_assistant_message_is_continued(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "user", "content": "What is the capital of France?"},
            {"role": "assistant", "content": "The capital of France is"},
        ],
        max_tokens=5,
        temperature=0,
    )
    assert "Paris" in (completion.choices[0].message.content or "")


async def test_async_client_plain_and_streaming(async_client: openai.AsyncOpenAI) -> None:
    completion = await async_client.chat.completions.create(
        model=MODEL, messages=HELLO, max_tokens=8, seed=2
    )
    assert completion.choices[0].message.content
    stream = await async_client.chat.completions.create(
        model=MODEL, messages=HELLO, max_tokens=8, seed=2, stream=True
    )
    text = ""
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
    assert text == completion.choices[0].message.content


def test_streaming_sends_deltas_then_one_usage_chunk(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=MODEL,
        messages=HELLO,
        max_tokens=16,
        seed=4,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    ids = {c.id for c in chunks}
    assert len(ids) == 1 and next(iter(ids)).startswith("gen-")
    usage_chunks = [c for c in chunks if c.usage is not None]
    assert len(usage_chunks) == 1 and usage_chunks[0] is chunks[-1]
    assert chunks[-1].choices == []
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finishes in (["stop"], ["length"])
    assert chunks[0].choices[0].delta.role == "assistant"
    usage = usage_chunks[0].usage
    assert usage is not None and usage.completion_tokens <= 16


def test_streamed_text_equals_non_streamed_text(client: openai.OpenAI) -> None:
    args = {"model": MODEL, "messages": HELLO, "max_tokens": 20, "seed": 11}
    whole = client.chat.completions.create(**args).choices[0].message.content  # type: ignore[call-overload]
    streamed = "".join(
        c.choices[0].delta.content or ""
        for c in client.chat.completions.create(**args, stream=True)  # type: ignore[call-overload]
        if c.choices
    )
    assert streamed == whole


@pytest.mark.parametrize("path", ["/v1", "/api/v1"])
def test_both_base_paths_serve(gateway, path: str) -> None:  # type: ignore[no-untyped-def]
    c = openai.OpenAI(base_url=gateway.base_url + path, api_key=gateway.app_key)
    assert c.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=1).choices


def test_the_printed_curl_line_works_as_printed(gateway) -> None:  # type: ignore[no-untyped-def]
    import json
    import subprocess

    curl = next(line for line in gateway.log().splitlines() if line.startswith("curl "))
    result = subprocess.run(
        ["bash", "-c", curl + " -s"], capture_output=True, text=True, timeout=60
    )
    body = json.loads(result.stdout)
    assert body["choices"][0]["message"]["content"]
    assert body["usage"]["completion_tokens"] <= 64


def test_omitted_max_tokens_uses_the_models_default(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Write a very long story about a dragon."}],
        seed=5,
    )
    assert completion.usage is not None
    assert 0 < completion.usage.completion_tokens <= 256
