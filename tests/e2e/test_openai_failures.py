"""The `openai` adapter against fake upstreams that fail the ways real ones do.

The fakes are one real aiohttp server on 127.0.0.1 (in a thread); the first path segment
of each catalog provider's base_url picks the behaviour. The gateway runs in-process under
uvicorn with the real adapter, and is called over HTTP as a client would.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import uvicorn
from aiohttp import web
from openai.types.chat import ChatCompletionMessageFunctionToolCall, ChatCompletionMessageParam

from modelyard.app import build_app
from modelyard.catalog import load_catalog
from modelyard.config import Settings
from modelyard.gateway import Gateway
from modelyard.providers.base import Delta
from modelyard.providers.openai import OPENAI_KIND, OpenAIProvider
from modelyard.providers.registry import ProviderContext, ProviderRegistry
from modelyard.schema.chat import parse_chat_request
from tests.e2e.server import free_port

ADMIN = "failures-admin-key"
KEY_ENV, KEY = "MODELYARD_TEST_HEALTHY_KEY", "sk-healthy-123"
FAILING = ["e500", "e503", "e429", "slow", "reset", "malformed", "nochoices", "errfirst"]
USAGE = {
    "prompt_tokens": 12,
    "completion_tokens": 4,
    "total_tokens": 16,
    "prompt_tokens_details": {"cached_tokens": 5},
    "completion_tokens_details": {"reasoning_tokens": 1},
}
HELLO = ["Hello", " from", " healthy"]


def frame(body: Any) -> bytes:
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> bytes:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return frame(
        {"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": choices, **extra}
    )


def answer(message: dict[str, Any], finish: str) -> dict[str, Any]:
    choice = {"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}
    return {"id": "chatcmpl-1", "object": "chat.completion", "choices": [choice], "usage": USAGE}


DONE = b"data: [DONE]\n\n"
ROLE = chunk({"role": "assistant"})
CALL = {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": ""}}
ARGUMENTS = ['{"ci', 'ty": "Paris"}']
CALLED = {**CALL, "function": {"name": "weather", "arguments": "".join(ARGUMENTS)}}

# Non-streaming answers by scenario: (status, JSON body or raw bytes).
ANSWERS: dict[str, tuple[int, Any]] = {
    "e500": (500, {"error": {"message": "upstream says e500", "type": "server_error"}}),
    "e503": (503, {"error": {"message": "upstream says e503", "type": "overloaded"}}),
    "e429": (429, {"error": {"message": "slow down", "type": "rate_limit"}}),
    "malformed": (200, b'{"choices": [{"mess'),
    "nochoices": (200, {"id": "chatcmpl-1", "object": "chat.completion"}),
    "errfirst": (200, {"error": {"message": "no capacity", "code": 503}}),
    "healthy": (200, answer({"content": "".join(HELLO), "reasoning": "think"}, "stop")),
    "tools": (200, answer({"content": None, "tool_calls": [CALLED]}, "tool_calls")),
}
# Streamed answers by scenario: the SSE frames, sent as they are.
STREAMS: dict[str, list[bytes]] = {
    "malformed": [ROLE, b"data: {oops\n\n"],
    "nochoices": [chunk(), chunk(), DONE],
    "errfirst": [ROLE, frame(ANSWERS["errfirst"][1])],  # an error before any token
    "midway": [ROLE, chunk({"content": "Hel"})],  # no finish_reason, no [DONE]
    "errchunk": [
        chunk({"content": "Hello"}),
        frame({"error": {"message": "model overloaded mid-stream", "code": 502}}),
    ],
    "healthy": [
        chunk({"role": "assistant", "content": ""}),
        chunk({"reasoning": "think"}),
        *(chunk({"content": piece}, usage=None) for piece in HELLO),
        chunk({}, "stop"),
        chunk(usage=USAGE),  # usage after the finishing chunk, alone, as OpenAI sends it
        DONE,
    ],
    "tools": [
        chunk({"role": "assistant", "tool_calls": [{**CALL, "index": 0}]}),
        *(chunk({"tool_calls": [{"index": 0, "function": {"arguments": a}}]}) for a in ARGUMENTS),
        chunk({}, "tool_calls", usage=USAGE),  # usage on the finishing chunk (vLLM style)
        DONE,
    ],
}


class FakeUpstreams:
    def __init__(self) -> None:
        self.port = free_port()
        self.seen: list[tuple[str, dict[str, str], dict[str, Any]]] = []
        self.hang_closed = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    def __enter__(self) -> FakeUpstreams:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._runner is not None
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/{scenario}/v1/chat/completions", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=1, handler_cancellation=True)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        scenario = request.match_info["scenario"]
        body = await request.json()
        self.seen.append((scenario, dict(request.headers), body))
        stream = bool(body.get("stream"))
        if scenario == "reset":
            return await self._reset(request, stream)
        if scenario == "hang":
            return await self._hang(request)
        if scenario == "slow":
            await asyncio.sleep(5)  # then a healthy answer, long after the timeouts
            scenario = "healthy"
        if not stream or scenario not in STREAMS:
            status, content = ANSWERS[scenario]
            raw = content if isinstance(content, bytes) else json.dumps(content).encode()
            headers = {"Retry-After": "7"} if status == 429 else {}
            return web.Response(
                body=raw, status=status, headers=headers, content_type="application/json"
            )
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for data in STREAMS[scenario]:
            await response.write(data)
        await response.write_eof()
        return response

    async def _reset(self, request: web.Request, stream: bool) -> web.StreamResponse:
        kind = "text/event-stream" if stream else "application/json"
        response = web.StreamResponse(headers={"Content-Type": kind})
        response.content_length = None if stream else 500
        await response.prepare(request)
        await response.write(b": processing\n\n" if stream else b'{"id": "chatcmpl-1", "cho')
        await asyncio.sleep(0.05)
        transport = request.transport
        assert transport is not None
        sock: socket.socket = transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()  # with SO_LINGER 0: an RST, as a crashed upstream sends
        raise asyncio.CancelledError

    async def _hang(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(chunk({"content": "Hello"}))
        try:
            for _ in range(3000):
                if request.transport is None or request.transport.is_closing():
                    break
                await asyncio.sleep(0.01)
        finally:
            self.hang_closed.set()
        return response


def catalog(port: int) -> str:
    def provider(name: str, extra: str = "") -> str:
        base = f"http://127.0.0.1:{port}/{name}/v1"
        return f'[[providers]]\nid = "{name}"\nkind = "openai"\nbase_url = "{base}"\n{extra}\n'

    def model(name: str, *providers: str, extra: str = "") -> str:
        text = f'[[models]]\nid = "test/{name}"\nname = "{name}"\n'
        text += 'input_modalities = ["text", "image"]\n'
        for p in providers:
            text += f'[[models.endpoints]]\nprovider = "{p}"\nupstream_model = "up-{p}"\n{extra}\n'
        return text

    text = provider("healthy", f'api_key_env = "{KEY_ENV}"')
    text += provider("slow", "first_token_timeout_s = 0.5\ntotal_timeout_s = 1.0")
    for name in [*FAILING, "midway", "errchunk", "hang", "tools"]:
        text += provider(name) if name != "slow" else ""
        text += model(f"{name}-only", name)
    for name in FAILING:
        text += model(f"{name}-fallback", name, "healthy")
    text += model("healthy", "healthy")
    text += '[[providers]]\nid = "nourl"\nkind = "openai"\n' + model("nourl-only", "nourl")
    return text + model("narrow", "healthy", extra='supported_parameters = ["max_tokens"]')


class InProcessGateway:
    def __init__(self, tmp: Path, upstream_port: int) -> None:
        (tmp / "catalog.toml").write_text(catalog(upstream_port))
        self.port = free_port()
        settings = Settings(
            # example.com does not resolve here; the policy's own tests cover refusal.
            image_url_allow="example.com",
            port=self.port,
            data_dir=tmp,
            catalog_file=tmp / "catalog.toml",
            admin_key=ADMIN,
            keepalive_interval_s=2.0,  # above the slow provider's first-token timeout
            admin_can_infer=True,
            bootstrap_app=False,
        )
        registry = ProviderRegistry()
        registry.register(OPENAI_KIND, OpenAIProvider)
        app = build_app(settings, Gateway.create(settings, providers=registry))
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{self.port}/v1"

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


@pytest.fixture(scope="module")
def fakes() -> Iterator[FakeUpstreams]:
    with FakeUpstreams() as running:
        yield running


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, fakes: FakeUpstreams) -> Iterator[str]:
    os.environ[KEY_ENV] = KEY
    try:
        with InProcessGateway(tmp_path_factory.mktemp("openai-failures"), fakes.port) as gw:
            yield gw.url
    finally:
        os.environ.pop(KEY_ENV, None)


@pytest.fixture
def sdk(gateway: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway, api_key=ADMIN, max_retries=0)


def post(gateway: str, model: str, stream: bool, **fields: Any) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], **fields}
    if stream:
        body["stream"] = True
    headers = {"Authorization": f"Bearer {ADMIN}"}
    return httpx.post(gateway + "/chat/completions", json=body, headers=headers, timeout=20)


def sse_data(response: httpx.Response) -> list[str]:
    return [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize("scenario", FAILING)
def test_a_failing_first_endpoint_falls_back_to_the_healthy_one(
    gateway: str, fakes: FakeUpstreams, scenario: str, stream: bool
) -> None:
    fakes.seen.clear()
    response = post(gateway, f"test/{scenario}-fallback", stream, provider={"order": [scenario]})
    assert response.status_code == 200, response.text
    assert [name for name, _, _ in fakes.seen] == [scenario, "healthy"]
    assert "Authorization" not in fakes.seen[0][1]  # this provider has no api_key_env
    if stream:
        chunks = [json.loads(d) for d in sse_data(response)[:-1]]
        assert {c["provider"] for c in chunks} == {"healthy"}
        text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
        assert text == "".join(HELLO)
    else:
        assert response.json()["provider"] == "healthy"
        assert response.json()["choices"][0]["message"]["content"] == "".join(HELLO)


EXPECTED_STATUS = {"e429": 429, "slow": 408}


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize("scenario", FAILING)
def test_a_failing_only_endpoint_is_the_spec_error(
    gateway: str, scenario: str, stream: bool
) -> None:
    started = time.monotonic()
    response = post(gateway, f"test/{scenario}-only", stream)
    status = EXPECTED_STATUS.get(scenario, 502)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == status
    if scenario == "e429":
        assert response.headers["retry-after"] == "7"
    if scenario == "slow":
        assert time.monotonic() - started < 3  # the fake would answer after 5 s
    if scenario in ("e500", "e503"):
        assert f"upstream says {scenario}" in error["message"]


@pytest.mark.parametrize("scenario", ["midway", "errchunk"])
def test_a_failure_after_the_first_token_is_an_error_chunk(
    gateway: str, sdk: openai.OpenAI, scenario: str
) -> None:
    response = post(gateway, f"test/{scenario}-only", True)
    assert response.status_code == 200
    data = sse_data(response)
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert chunks[0]["choices"][0]["delta"]["content"] in ("Hel", "Hello")
    last = chunks[-1]
    assert last["error"]["code"] == 502
    assert last["error"]["metadata"]["error_type"] == "upstream_error"
    assert last["choices"][0]["finish_reason"] == "error"
    expected = "ended early" if scenario == "midway" else "model overloaded mid-stream"
    assert expected in last["error"]["message"]
    assert not any(c["choices"] == [] for c in chunks)  # no usage chunk after an error
    with pytest.raises(openai.APIError, match=expected):
        for _ in sdk.chat.completions.create(
            model=f"test/{scenario}-only", messages=[{"role": "user", "content": "hi"}], stream=True
        ):
            pass


def test_a_client_disconnect_closes_the_upstream_connection(
    gateway: str, fakes: FakeUpstreams
) -> None:
    fakes.hang_closed.clear()
    body = {"model": "test/hang-only", "messages": [{"role": "user", "content": "hi"}]}
    headers = {"Authorization": f"Bearer {ADMIN}"}
    with httpx.stream(
        "POST", gateway + "/chat/completions", json={**body, "stream": True}, headers=headers
    ) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if "Hello" in line:
                # Still connected (leaving the loop closes httpx's connection): the
                # upstream must still be open.
                assert not fakes.hang_closed.wait(0.3)
                break
    assert fakes.hang_closed.wait(1.0), "the upstream connection stayed open"


def test_a_provider_without_base_url_is_unavailable(gateway: str) -> None:
    response = post(gateway, "test/nourl-only", False)
    assert response.status_code == 503
    assert "'nourl' has no base_url" in response.json()["error"]["message"]


async def test_closing_the_adapter_stream_early_closes_the_upstream_connection(
    fakes: FakeUpstreams, tmp_path: Path
) -> None:
    (tmp_path / "catalog.toml").write_text(catalog(fakes.port))
    catalog_ = load_catalog(tmp_path / "catalog.toml")
    endpoint = catalog_.models["test/hang-only"].endpoints[0]
    request = parse_chat_request(
        b'{"model": "test/hang-only", "messages": [{"role": "user", "content": "hi"}]}'
    )
    provider = OpenAIProvider(ProviderContext(catalog_, tmp_path))
    await provider.start()
    try:
        fakes.hang_closed.clear()
        events = provider.stream(request, endpoint)
        assert await anext(events) == Delta(content="Hello")
        await events.aclose()  # suspended at its yield, as when the gateway stops reading
        assert await asyncio.to_thread(fakes.hang_closed.wait, 1.0)
    finally:
        await provider.close()


def test_a_healthy_upstream_answer_is_normalised(sdk: openai.OpenAI, fakes: FakeUpstreams) -> None:
    fakes.seen.clear()
    completion = sdk.chat.completions.create(
        model="test/healthy", messages=[{"role": "user", "content": "hi"}]
    )
    choice = completion.choices[0]
    assert choice.message.content == "".join(HELLO)
    assert choice.finish_reason == "stop"
    assert (choice.message.model_extra or {}).get("reasoning") == "think"
    assert completion.model_extra is not None and completion.model_extra["provider"] == "healthy"
    usage = completion.usage
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (12, 4)
    assert usage.prompt_tokens_details and usage.prompt_tokens_details.cached_tokens == 5
    assert usage.completion_tokens_details and usage.completion_tokens_details.reasoning_tokens == 1
    _, headers, body = fakes.seen[0]
    assert headers["Authorization"] == f"Bearer {KEY}"
    assert "stream" not in body and body["model"] == "up-healthy"


def test_a_healthy_stream_relays_reasoning_text_and_late_usage(sdk: openai.OpenAI) -> None:
    chunks = list(
        sdk.chat.completions.create(
            model="test/healthy", messages=[{"role": "user", "content": "hi"}], stream=True
        )
    )
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert "".join(d.content or "" for d in deltas) == "".join(HELLO)
    assert [d.model_extra.get("reasoning") for d in deltas if d.model_extra] == ["think"]
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    usage_chunks = [c for c in chunks if not c.choices]
    assert len(usage_chunks) == 1 and usage_chunks[0].usage is not None
    assert usage_chunks[0].usage.prompt_tokens == 12
    assert usage_chunks[0].usage.completion_tokens == 4


def test_tool_calls_plain_and_streamed(sdk: openai.OpenAI) -> None:
    model = "test/tools-only"
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": "weather?"}]
    completion = sdk.chat.completions.create(model=model, messages=messages)
    calls = completion.choices[0].message.tool_calls or []
    assert completion.choices[0].finish_reason == "tool_calls"
    assert [
        (c.id, c.function.name, c.function.arguments)
        for c in calls
        if isinstance(c, ChatCompletionMessageFunctionToolCall)
    ] == [("call_1", "weather", '{"city": "Paris"}')]
    chunks = list(sdk.chat.completions.create(model=model, messages=messages, stream=True))
    pieces = [t for c in chunks if c.choices for t in c.choices[0].delta.tool_calls or ()]
    assert pieces[0].id == "call_1" and pieces[0].function and pieces[0].function.name == "weather"
    assert "".join((p.function.arguments or "") for p in pieces if p.function) == (
        '{"city": "Paris"}'
    )
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    usage = [c.usage for c in chunks if not c.choices]
    assert usage and usage[0] is not None and usage[0].prompt_tokens == 12


def test_only_set_and_supported_parameters_are_sent(gateway: str, fakes: FakeUpstreams) -> None:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "be brief"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
            ],
        },
        {
            "role": "assistant",
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "done"},
    ]
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    fakes.seen.clear()
    sent = {"temperature": 0.5, "seed": 7, "max_tokens": 9, "tools": tools, "user": "u-1"}
    assert post(gateway, "test/healthy", True, messages=messages, **sent).status_code == 200
    # Tools are a capability the planner requires; the rest a narrow endpoint does without.
    narrow_sent = {**sent, "tools": None, "top_p": 0.9}
    assert post(gateway, "test/narrow", False, messages=messages, **narrow_sent).status_code == 200
    (_, _, full), (_, headers, narrow) = fakes.seen
    assert full == {
        "model": "up-healthy",
        "messages": messages,
        **sent,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    # test/narrow supports max_tokens only: the rest is not sent.
    assert narrow == {"model": "up-healthy", "messages": messages, "max_tokens": 9, "user": "u-1"}
    assert headers["Authorization"] == f"Bearer {KEY}"
