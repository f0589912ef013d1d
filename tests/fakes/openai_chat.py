"""A fake OpenAI-compatible chat completions server on 127.0.0.1, run in a thread.

It records every request (`received`: path, headers, JSON body) and answers
deterministically, plain JSON or SSE chunks ending with a usage chunk and [DONE]:

- a forced tool (`tool_choice` "required" or a named function): one tool call whose
  arguments are made from the function's JSON Schema, streamed in three pieces;
- after a `tool` message: "Tool said: <its content>";
- otherwise "Echo: <the last user text>", one chunk per word.

Usage: prompt_tokens is a quarter of the messages' JSON length, completion_tokens one per
word (or per quarter of the arguments' JSON), so a test can compare both ends.

POST /v1/embeddings answers `fake_vector(input)` for each input (text or token ids; the
length is the body's `dimensions`, else 8), prompt_tokens one per word or token id.
`embedding_failures` is a script: each request pops its first status and answers it as an
OpenAI error instead (empty: all succeed).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

JSON = dict[str, Any]


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: JSON


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return " ".join(p.get("text", "") for p in content or [] if p.get("type") == "text")


def _sample_arguments(schema: JSON) -> JSON:
    samples = {"string": "sample", "integer": 1, "number": 1.5, "boolean": True}
    properties = schema.get("properties") or {}
    return {name: samples.get(prop.get("type")) for name, prop in properties.items()}


def fake_vector(item: str | list[int], dimensions: int = 8) -> list[float]:
    """The fake's embedding of one input: floats in [-1, 1) from SHA-256 of its JSON, exact
    in float32 (multiples of 1/128), so a base64 round trip compares equal."""
    seed = json.dumps(item).encode()
    digest = b""
    counter = 0
    while len(digest) < dimensions:
        digest += hashlib.sha256(seed + counter.to_bytes(4, "little")).digest()
        counter += 1
    return [(byte - 128) / 128 for byte in digest[:dimensions]]


def _frame(body: Any) -> bytes:
    return b"data: " + json.dumps(body).encode() + b"\n\n"


class FakeOpenAIChat:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.usages: list[JSON] = []
        self.embedding_failures: list[int] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.port = 0

    def __enter__(self) -> FakeOpenAIChat:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._handle)
        app.router.add_post("/v1/embeddings", self._embeddings)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def last_body(self) -> JSON:
        return self.received[-1].body

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.received.append(Received(request.path, dict(request.headers), body))
        message, finish = self._answer(body)
        calls = message.get("tool_calls", [])
        completion = sum(len(c["function"]["arguments"]) // 4 + 1 for c in calls)
        completion += len((message.get("content") or "").split())
        prompt = max(1, len(json.dumps(body["messages"])) // 4)
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        self.usages.append(usage)
        base = {"id": f"chatcmpl-{len(self.received)}", "model": body["model"], "created": 1}
        if not body.get("stream"):
            choice = {"index": 0, "message": message, "finish_reason": finish}
            return web.json_response(
                {**base, "object": "chat.completion", "choices": [choice], "usage": usage}
            )
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)

        async def send(delta: JSON | None, finish_reason: str | None = None, **extra: Any) -> None:
            choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
            choices = [] if delta is None else [choice]
            await response.write(
                _frame({**base, "object": "chat.completion.chunk", "choices": choices, **extra})
            )

        await send({"role": "assistant", "content": ""})
        if message.get("content"):
            words = message["content"].split(" ")
            for index, word in enumerate(words):
                await send({"content": word if index == 0 else " " + word})
        for position, call in enumerate(message.get("tool_calls", [])):
            raw = call["function"]["arguments"]
            third = max(len(raw) // 3, 1)
            head = {"index": position, "id": call["id"], "type": "function"}
            opening = {"name": call["function"]["name"], "arguments": ""}
            await send({"tool_calls": [{**head, "function": opening}]})
            for piece in (raw[:third], raw[third : 2 * third], raw[2 * third :]):
                await send({"tool_calls": [{"index": position, "function": {"arguments": piece}}]})
        await send({}, finish)
        await send(None, usage=usage)
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def _embeddings(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.received.append(Received(request.path, dict(request.headers), body))
        if self.embedding_failures:
            status = self.embedding_failures.pop(0)
            error = {"message": f"scripted failure {status}", "type": "server_error"}
            return web.json_response({"error": error}, status=status)
        raw = body["input"]
        if isinstance(raw, str) or (raw and isinstance(raw[0], int)):
            raw = [raw]
        dimensions = int(body.get("dimensions") or 8)
        data = [
            {"object": "embedding", "index": index, "embedding": fake_vector(item, dimensions)}
            for index, item in enumerate(raw)
        ]
        tokens = sum(len(item.split()) if isinstance(item, str) else len(item) for item in raw)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        self.usages.append(usage)
        return web.json_response(
            {"object": "list", "data": data, "model": body["model"], "usage": usage}
        )

    def _answer(self, body: JSON) -> tuple[JSON, str]:
        messages = body["messages"]
        last = messages[-1]
        choice = body.get("tool_choice")
        tools = {t["function"]["name"]: t["function"] for t in body.get("tools") or []}
        name = None
        if choice == "required" and tools:
            name = next(iter(tools))
        elif isinstance(choice, dict):
            name = choice["function"]["name"]
        if name is not None and last["role"] != "tool":
            arguments = _sample_arguments(tools[name].get("parameters") or {})
            call = {
                "id": f"call_{len(self.received):04d}",
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(arguments)},
            }
            return {"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls"
        if last["role"] == "tool":
            text = "Tool said: " + _text_of(last["content"])
        else:
            text = "Echo: " + _text_of(last["content"])
        return {"role": "assistant", "content": text}, "stop"


def catalog_toml(
    base_url: str,
    models: Mapping[str, str],
    *,
    provider: str = "fake-chat",
    zdr: bool = False,
) -> str:
    """A catalog with a provider of kind openai at `base_url` and `models` on it (model id →
    extra TOML lines for that model, e.g. "rpm = 1"), each served as "fake-model" at 1 and
    2 USD per million prompt and completion tokens."""
    entries = [
        f'[[providers]]\nid = "{provider}"\nkind = "openai"\nbase_url = "{base_url}"\n'
        f"zdr = {str(zdr).lower()}\n"
    ]
    for model_id, extra in models.items():
        entries.append(
            f'[[models]]\nid = "{model_id}"\nname = "{model_id}"\ncontext_length = 32000\n'
            f"max_output = 4096\n{extra}\n"
            f'[[models.endpoints]]\nprovider = "{provider}"\nupstream_model = "fake-model"\n'
            "price = { prompt = 1.0, completion = 2.0 }\n"
        )
    return "\n".join(entries)
