"""The `openai` adapter against an OpenAI-compatible server nobody here wrote.

llama-cpp-python's own server (`python -m llama_cpp.server`) serves the embedded GGUF on
127.0.0.1; a real `modelyard serve` process routes `test/gemma-upstream` to it. The app and
its key are made through the admin API, and the gateway is called with the openai SDK.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionMessageParam

from modelyard.providers.local.model_file import resolve_model_path
from tests.e2e.server import RunningGateway, free_port, start_gateway

MODEL = "test/gemma-upstream"
MESSAGES: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "Name three colours of the rainbow, in one short sentence."},
]
MAX_TOKENS = 24


@pytest.fixture(scope="module")
def llama_server(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    gguf = resolve_model_path("builtin:gemma-3-270m", data_dir, show_progress=False)
    port = free_port()
    log_path = tmp_path_factory.mktemp("llama-server") / "server.log"
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048"]
    # The GGUF carries no chat template (the catalog's local endpoint says "gemma" too).
    command += ["--chat_format", "gemma"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, f"llama_cpp.server exited:\n{log_path.read_text()}"
            assert time.monotonic() < deadline, f"llama_cpp.server not up:\n{log_path.read_text()}"
            try:
                if httpx.get(url + "/models", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def upstream_gateway(
    llama_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningGateway]:
    home = tmp_path_factory.mktemp("openai-upstream")
    catalog = home / "catalog.toml"
    catalog.write_text(
        f"""
[[providers]]
id = "llamaserver"
name = "llama.cpp server"
kind = "openai"
base_url = "{llama_server}"

[[models]]
id = "{MODEL}"
name = "Gemma 3 270M via llama-cpp-python's server"
context_length = 2048
max_output = 512

[[models.endpoints]]
provider = "llamaserver"
upstream_model = "gemma-3-270m"
"""
    )
    running = start_gateway(home / "data", extra_args=["--catalog", str(catalog)])
    yield running
    running.stop()


@pytest.fixture(scope="module")
def client(upstream_gateway: RunningGateway) -> openai.OpenAI:
    gw = upstream_gateway
    headers = {"Authorization": f"Bearer {gw.admin_key}"}
    created = httpx.post(f"{gw.base_url}/admin/apps", json={"name": "upstream"}, headers=headers)
    assert created.status_code == 201, created.text
    attached = httpx.post(
        f"{gw.base_url}/admin/apps/upstream/models",
        json={"model": MODEL, "alias": "GEMMA"},
        headers=headers,
    )
    assert attached.status_code == 201, attached.text
    key = attached.json()["config"]["GEMMA_KEY"]
    return openai.OpenAI(base_url=gw.api_url, api_key=key, max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def direct(llama_server: str, client: openai.OpenAI) -> ChatCompletion:
    """The same request sent to llama.cpp's server without the gateway."""
    upstream = openai.OpenAI(base_url=llama_server, api_key="unused", max_retries=0, timeout=120)
    return upstream.chat.completions.create(
        model="gemma-3-270m", messages=MESSAGES, temperature=0, seed=42, max_tokens=MAX_TOKENS
    )


def test_a_plain_completion_is_relayed_with_its_usage(
    client: openai.OpenAI, direct: ChatCompletion
) -> None:
    completion = client.chat.completions.create(
        model=MODEL, messages=MESSAGES, temperature=0, seed=42, max_tokens=MAX_TOKENS
    )
    assert completion.model == MODEL
    assert completion.id.startswith("gen-")
    assert (completion.model_extra or {})["provider"] == "llamaserver"
    choice = completion.choices[0]
    assert choice.message.content and choice.message.content.strip()
    assert choice.message.content == direct.choices[0].message.content
    assert choice.finish_reason == direct.choices[0].finish_reason
    assert choice.finish_reason in ("stop", "length")
    assert (choice.model_extra or {})["native_finish_reason"] == choice.finish_reason
    usage, expected = completion.usage, direct.usage
    assert usage is not None and expected is not None
    assert usage.prompt_tokens == expected.prompt_tokens > 10
    assert usage.completion_tokens == expected.completion_tokens
    assert 0 < usage.completion_tokens <= MAX_TOKENS
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_the_streamed_text_equals_the_plain_text(
    client: openai.OpenAI, direct: ChatCompletion
) -> None:
    chunks = list(
        client.chat.completions.create(
            model=MODEL,
            messages=MESSAGES,
            stream=True,
            temperature=0,
            seed=42,
            max_tokens=MAX_TOKENS,
        )
    )
    with_choices = [c for c in chunks if c.choices]
    assert len(with_choices) > 2  # token by token, not one block
    text = "".join(c.choices[0].delta.content or "" for c in with_choices)
    assert text == direct.choices[0].message.content
    assert {(c.model_extra or {})["provider"] for c in chunks} == {"llamaserver"}
    assert {c.model for c in chunks} == {MODEL}
    finishes = [c.choices[0].finish_reason for c in with_choices if c.choices[0].finish_reason]
    assert finishes == [direct.choices[0].finish_reason]
    # Usage comes once, in a last chunk without choices. llama-cpp-python's server ignores
    # stream_options.include_usage, so its numbers are what the upstream reported: none.
    assert not chunks[-1].choices and chunks[-1].usage is not None
    assert sum(1 for c in chunks if c.usage is not None) == 1
    assert chunks[-1].usage.total_tokens == (
        chunks[-1].usage.prompt_tokens + chunks[-1].usage.completion_tokens
    )


def test_parameters_llama_cpp_does_not_know_are_harmless_and_stop_is_sent(
    client: openai.OpenAI,
) -> None:
    # top_a and repetition_penalty are in the default `openai` parameter set (OpenRouter
    # knows them); llama-cpp-python's server ignores what it does not know.
    completion = client.chat.completions.create(
        model=MODEL,
        messages=MESSAGES,
        extra_body={"top_a": 0.5, "repetition_penalty": 1.1, "top_k": 20},
        stop=[" "],
        temperature=0,
        seed=42,
        max_tokens=MAX_TOKENS,
    )
    choice = completion.choices[0]
    assert choice.message.content is not None and " " not in choice.message.content
    assert choice.finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.completion_tokens < MAX_TOKENS
