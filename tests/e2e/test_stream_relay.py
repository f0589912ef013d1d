"""The SSE relay and fallback, with a provider whose behaviour the test scripts.

The embedded model cannot be made to fail on cue, so these tests register a scripted
provider through the real registry and run the real app under uvicorn on 127.0.0.1,
called with the official openai SDK. The user message names the script.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncGenerator, Iterator
from pathlib import Path
from typing import ClassVar

import httpx
import openai
import pytest
import uvicorn

from modelyard.app import build_app
from modelyard.catalog import Catalog, Endpoint
from modelyard.config import Settings
from modelyard.errors import UpstreamError
from modelyard.gateway import Gateway
from modelyard.providers.base import Completion, Delta, Finish, StreamEvent, Usage
from modelyard.providers.openai import OPENAI_KIND
from modelyard.providers.registry import ProviderContext, ProviderRegistry
from modelyard.schema.chat import ChatRequest, UserMessage
from tests.e2e.server import free_port

CATALOG = """
[[providers]]
id = "first"
kind = "openai"

[[providers]]
id = "second"
kind = "openai"

[[models]]
id = "test/scripted"
name = "Scripted"

[[models.endpoints]]
provider = "first"
upstream_model = "a"
price = { prompt = 1.0, completion = 2.0 }

[[models.endpoints]]
provider = "second"
upstream_model = "b"
price = { prompt = 1.0, completion = 2.0 }
"""
KEEPALIVE_S = 0.2


class ScriptedProvider:
    kind: ClassVar[str] = "openai"

    def __init__(self, catalog: Catalog) -> None:
        self.calls: list[str] = []

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    def unavailable_reason(self, endpoint: Endpoint) -> str | None:
        return None

    @staticmethod
    def _script(request: ChatRequest) -> str:
        message = request.messages[-1]
        assert isinstance(message, UserMessage) and isinstance(message.content, str)
        return message.content

    async def complete(self, request: ChatRequest, endpoint: Endpoint) -> Completion:
        self.calls.append(endpoint.provider.id)
        if self._script(request) == "first fails" and endpoint.provider.id == "first":
            raise UpstreamError("first is down", upstream_status=503)
        return Completion(f"from {endpoint.provider.id}", "stop", "stop", Usage(10, 3))

    async def stream(
        self, request: ChatRequest, endpoint: Endpoint
    ) -> AsyncGenerator[StreamEvent, None]:
        self.calls.append(endpoint.provider.id)
        script = self._script(request)
        if script == "first fails" and endpoint.provider.id == "first":
            raise UpstreamError("first is down", upstream_status=503)
        if script == "slow start":
            await asyncio.sleep(KEEPALIVE_S * 6)
        yield Delta(content="Hello")
        if script == "fails midway":
            raise UpstreamError("the upstream dropped the stream", upstream_status=502)
        if script == "slow middle":
            await asyncio.sleep(KEEPALIVE_S * 4)
        yield Delta(content=" world")
        yield Finish("stop", "end_turn", Usage(10, 2))


class InProcessGateway:
    def __init__(self, tmp: Path) -> None:
        catalog_file = tmp / "catalog.toml"
        catalog_file.write_text(CATALOG)
        self.port = free_port()
        settings = Settings(
            port=self.port,
            data_dir=tmp,
            catalog_file=catalog_file,
            admin_key="relay-key",
            keepalive_interval_s=KEEPALIVE_S,
            admin_can_infer=True,
            bootstrap_app=False,
        )
        registry = ProviderRegistry()
        self.provider: ScriptedProvider | None = None

        def make(context: ProviderContext) -> ScriptedProvider:
            self.provider = ScriptedProvider(context.catalog)
            return self.provider

        registry.register(OPENAI_KIND, make)
        app = build_app(settings, Gateway.create(settings, providers=registry))
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> InProcessGateway:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessGateway]:
    with InProcessGateway(tmp_path_factory.mktemp("relay")) as running:
        yield running


@pytest.fixture
def sdk(relay: InProcessGateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=relay.base_url, api_key="relay-key", max_retries=0)


def _stream_lines(relay: InProcessGateway, script: str) -> list[str]:
    body = {
        "model": "test/scripted",
        "messages": [{"role": "user", "content": script}],
        "stream": True,
        "provider": {"order": ["first", "second"]},
    }
    with httpx.stream(
        "POST",
        relay.base_url + "/chat/completions",
        json=body,
        headers={"Authorization": "Bearer relay-key"},
        timeout=10,
    ) as response:
        assert response.status_code == 200
        return [line for line in response.iter_lines() if line]


def test_error_after_first_token_keeps_200_and_sends_an_error_chunk(
    relay: InProcessGateway, sdk: openai.OpenAI
) -> None:
    lines = _stream_lines(relay, "fails midway")
    assert lines[-1] == "data: [DONE]"
    chunks = [httpx.Response(200, content=line[6:]).json() for line in lines[:-1]]
    assert chunks[0]["choices"][0]["delta"]["content"] == "Hello"
    error_chunk = chunks[-1]
    assert error_chunk["error"]["code"] == 502
    assert error_chunk["error"]["metadata"]["error_type"] == "upstream_error"
    assert error_chunk["choices"][0]["finish_reason"] == "error"
    # The SDK surfaces the error chunk as an APIError after the text it already got.
    stream = sdk.chat.completions.create(
        model="test/scripted", messages=[{"role": "user", "content": "fails midway"}], stream=True
    )
    received = []
    with pytest.raises(openai.APIError, match="dropped the stream"):
        for chunk in stream:
            received.extend(c.delta.content for c in chunk.choices if c.delta.content)
    assert received == ["Hello"]


def test_keepalive_comments_flow_while_the_first_token_is_slow(relay: InProcessGateway) -> None:
    lines = _stream_lines(relay, "slow start")
    keepalives = [line for line in lines if line.startswith(":")]
    assert keepalives and all(line == ": keep-alive" for line in keepalives)
    data = [line for line in lines if line.startswith("data: {")]
    assert '"Hello"' in data[0]


def test_keepalive_comments_flow_between_slow_tokens(relay: InProcessGateway) -> None:
    lines = _stream_lines(relay, "slow middle")
    first = next(i for i, line in enumerate(lines) if '"Hello"' in line)
    second = next(i for i, line in enumerate(lines) if '" world"' in line)
    assert any(line == ": keep-alive" for line in lines[first:second])


def test_failure_before_the_first_token_falls_back_to_the_next_endpoint(
    relay: InProcessGateway, sdk: openai.OpenAI
) -> None:
    assert relay.provider is not None
    relay.provider.calls.clear()
    order = {"provider": {"order": ["first", "second"]}}
    stream = sdk.chat.completions.create(
        model="test/scripted",
        messages=[{"role": "user", "content": "first fails"}],
        stream=True,
        extra_body=order,
    )
    chunks = list(stream)
    assert {c.model_extra["provider"] for c in chunks if c.model_extra} == {"second"}
    completion = sdk.chat.completions.create(
        model="test/scripted",
        messages=[{"role": "user", "content": "first fails"}],
        extra_body=order,
    )
    assert completion.choices[0].message.content == "from second"
    assert relay.provider.calls == ["first", "second", "first", "second"]


def test_no_fallback_when_the_request_forbids_it(relay: InProcessGateway) -> None:
    response = httpx.post(
        relay.base_url + "/chat/completions",
        json={
            "model": "test/scripted",
            "messages": [{"role": "user", "content": "first fails"}],
            "provider": {"order": ["first"], "allow_fallbacks": False},
        },
        headers={"Authorization": "Bearer relay-key"},
    )
    assert response.status_code == 502
    assert response.json()["error"]["message"] == "first is down"


def test_cost_is_priced_from_the_serving_endpoint(sdk: openai.OpenAI) -> None:
    completion = sdk.chat.completions.create(
        model="test/scripted", messages=[{"role": "user", "content": "hi"}]
    )
    assert completion.usage is not None
    # 10 prompt tokens at $1/M + 3 completion tokens at $2/M
    assert completion.usage.model_extra["cost"] == pytest.approx(16e-6)  # type: ignore[index]
