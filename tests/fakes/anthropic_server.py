"""A fake Anthropic Messages API on 127.0.0.1, written from the public API reference.

It checks the headers and body as Anthropic does (`anthropic_rules`), answers with
Anthropic's error JSON when it would refuse, and otherwise answers deterministically:

- text: "Echo: <the last user text>" (a prefill gets " and so on." appended to it);
  after a tool result: "Tool said: <result>";
- a `tool_use` block when tool_choice forces a tool (any: the first tool, tool: that one),
  with an input made from the tool's JSON Schema;
- a `thinking` block first when thinking is enabled;
- `stop_sequences` and `max_tokens` cut the text as the real API would;
- usage: about four characters per token; blocks up to a `cache_control` breakpoint are
  cache writes the first time that prefix is seen and cache reads afterwards.

Plain JSON or the full SSE event sequence (message_start, ping, content blocks with
text/thinking/input_json deltas, message_delta, message_stop). Test scripts, in the last
user text: "[error-midway]" sends an error event after the first text delta,
"[cut-midway]" ends the stream there without message_stop, "[long]" streams slowly;
a model whose name starts with "overloaded" gets HTTP 529 overloaded_error. With an
`anthropic-beta` header, the fields of beta features (`context_management`, ...) pass.

`/v1/messages/count_tokens` answers `{"input_tokens": N}`, N counted as for usage. Every
request is kept in `received` (path, query, headers, body) and the events of every stream
in `streams`, every answer in `answers`, so a test can compare both ends of the gateway.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.fakes.anthropic_rules import problem

API_KEY = "sk-ant-fake-key"
JSON = dict[str, Any]
BETA_FIELDS = frozenset({"context_management", "container", "mcp_servers"})
COUNT_TOKENS_FIELDS = frozenset({"model", "messages", "system", "tools", "tool_choice", "thinking"})


@dataclass(frozen=True)
class Received:
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # names in lower case
    body: Any  # the parsed JSON, None when it did not parse


def error_body(kind: str, message: str) -> JSON:
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_1"}


def _error(status: int, kind: str, message: str) -> web.Response:
    return web.json_response(error_body(kind, message), status=status)


def _tokens(value: Any) -> int:
    if isinstance(value, dict):
        value = {k: v for k, v in value.items() if k != "cache_control"}
    return max(1, len(json.dumps(value, sort_keys=True)) // 4)


def _output_tokens(block: JSON) -> int:
    """A word of text or thinking is one token here, which makes max_tokens easy to test."""
    if block["type"] == "tool_use":
        return _tokens(block["input"])
    return len(str(block.get("text", block.get("thinking", ""))).split())


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for block in content:
        if block.get("type") == "text":
            parts.append(block["text"])
        elif block.get("type") == "tool_result":
            parts.append(_text_of(block.get("content") or ""))
    return " ".join(parts)


def _sample_input(schema: JSON) -> JSON:
    samples = {"string": "sample", "integer": 1, "number": 1.5, "boolean": True}
    properties = schema.get("properties") or {}
    return {name: samples.get(prop.get("type")) for name, prop in properties.items()}


class FakeAnthropic:
    def __init__(self, api_key: str = API_KEY) -> None:
        self.api_key = api_key
        self.requests: list[JSON] = []  # every parsed body, rejected ones included
        self.received: list[Received] = []  # every request to any route, as it arrived
        self.streams: list[list[JSON]] = []  # the data of every event of every stream sent
        self.usages: list[JSON] = []  # the usage of every answer
        self.answers: list[JSON] = []  # every message answered, whole (streamed ones too)
        self.aborted_streams = 0
        self._cached: set[str] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- lifecycle -----------------------------------------------------------------------
    def __enter__(self) -> FakeAnthropic:
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
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_post("/v1/messages", self._messages)
        app.router.add_post("/v1/messages/count_tokens", self._count_tokens)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def last_request(self) -> JSON:
        return self.requests[-1]

    # -- the endpoints -------------------------------------------------------------------
    async def _receive(self, request: web.Request) -> Any:
        """Record the request; its parsed body, or an error response to send instead."""
        raw = await request.read()
        try:
            body = json.loads(raw)
        except json.JSONDecodeError:
            body = None
        headers = {name.lower(): value for name, value in request.headers.items()}
        self.received.append(Received(request.path, dict(request.query), headers, body))
        if request.headers.get("x-api-key") != self.api_key:
            return _error(401, "authentication_error", "invalid x-api-key")
        if not request.headers.get("anthropic-version"):
            return _error(400, "invalid_request_error", "anthropic-version: header is required")
        if body is None:
            return _error(400, "invalid_request_error", "There was an error parsing the body")
        return body

    async def _count_tokens(self, request: web.Request) -> web.Response:
        body = await self._receive(request)
        if isinstance(body, web.Response):
            return body
        if not isinstance(body, dict):
            return _error(400, "invalid_request_error", "body: Input should be a valid dictionary")
        extra = sorted(set(body) - COUNT_TOKENS_FIELDS)
        if extra:
            return _error(
                400, "invalid_request_error", f"{extra[0]}: Extra inputs are not permitted"
            )
        message = problem({**body, "max_tokens": 1})
        if message is not None:
            return _error(400, "invalid_request_error", message)
        return web.json_response({"input_tokens": count_prompt(body)})

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        body = await self._receive(request)
        if isinstance(body, web.Response):
            return body
        if isinstance(body, dict):
            self.requests.append(body)
        if isinstance(body, dict) and request.headers.get("anthropic-beta"):
            # Beta features' fields are accepted with a beta header (and otherwise ignored).
            message = problem({k: v for k, v in body.items() if k not in BETA_FIELDS})
        else:
            message = problem(body)
        if message is not None:
            return _error(400, "invalid_request_error", message)
        if body["model"].startswith("overloaded"):
            return _error(529, "overloaded_error", "Overloaded")
        answer = self._answer(body)
        self.answers.append(answer)
        if body.get("stream"):
            return await self._stream(request, answer, _text_of(body["messages"][-1]["content"]))
        return web.json_response(answer)

    def _answer(self, body: JSON) -> JSON:
        messages = body["messages"]
        last = messages[-1]
        content: list[JSON] = []
        budget = body["max_tokens"]
        if (body.get("thinking") or {}).get("type") == "enabled":
            thought = f"The user wrote {len(_text_of(last['content']).split())} words."
            content.append({"type": "thinking", "thinking": thought, "signature": "sig-fake"})
            budget -= _output_tokens(content[-1])
        choice = (body.get("tool_choice") or {}).get("type")
        stop_reason, stop_sequence = "end_turn", None
        if choice in ("any", "tool") and last["role"] == "user":
            tools = body["tools"]
            name = body["tool_choice"]["name"] if choice == "tool" else tools[0]["name"]
            schema = next(t for t in tools if t["name"] == name)["input_schema"]
            tool_input = _sample_input(schema)
            call = {"type": "tool_use", "id": f"toolu_{len(self.requests):04d}", "name": name}
            content.append({**call, "input": tool_input})
            stop_reason = "tool_use"
        else:
            if last["role"] == "assistant":
                text = " and so on."
            elif isinstance(last["content"], list) and any(
                b["type"] == "tool_result" for b in last["content"]
            ):
                text = "Tool said: " + _text_of(last["content"])
            else:
                text = "Echo: " + _text_of(last["content"])
            for stop in body.get("stop_sequences") or []:
                if stop in text:
                    text, stop_reason, stop_sequence = (
                        text[: text.index(stop)],
                        "stop_sequence",
                        stop,
                    )
            words = text.split(" ")
            if len(words) > budget:
                text, stop_reason = " ".join(words[: max(budget, 0)]), "max_tokens"
            content.append({"type": "text", "text": text})
        output = sum(_output_tokens(block) for block in content)
        usage = {**self._prompt_usage(body), "output_tokens": output}
        self.usages.append(usage)
        return {
            "id": f"msg_{len(self.requests):04d}",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": stop_sequence,
            "usage": usage,
        }

    def _prompt_usage(self, body: JSON) -> JSON:
        """Input tokens, split into cache reads, cache writes and the rest."""
        blocks = _prompt_blocks(body)
        sizes = _prompt_sizes(body)
        breakpoints = [
            i for i, b in enumerate(blocks) if isinstance(b, dict) and b.get("cache_control")
        ]
        read = write = 0
        if breakpoints:
            keys = {
                i: hashlib.sha256(json.dumps([body["model"], blocks[: i + 1]]).encode()).hexdigest()
                for i in breakpoints
            }
            hit = next((i for i in reversed(breakpoints) if keys[i] in self._cached), None)
            read = sum(sizes[: hit + 1]) if hit is not None else 0
            write = sum(sizes[: breakpoints[-1] + 1]) - read
            self._cached.update(keys.values())
        return {
            "input_tokens": sum(sizes) - read - write,
            "cache_creation_input_tokens": write,
            "cache_read_input_tokens": read,
        }

    # -- streaming -----------------------------------------------------------------------
    async def _stream(self, request: web.Request, answer: JSON, script: str) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        sent: list[JSON] = []
        self.streams.append(sent)

        async def send(kind: str, data: JSON) -> None:
            sent.append(data)
            await response.write(f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode())

        try:
            start_usage = {**answer["usage"], "output_tokens": 1}
            start = {**answer, "content": [], "stop_reason": None, "stop_sequence": None}
            await send(
                "message_start",
                {"type": "message_start", "message": {**start, "usage": start_usage}},
            )
            await send("ping", {"type": "ping"})
            for index, block in enumerate(answer["content"]):
                for kind, data in _block_events(index, block):
                    await send(kind, {"type": kind, **data})
                    if kind == "content_block_delta" and block["type"] == "text":
                        if "[error-midway]" in script:
                            error = error_body("overloaded_error", "Overloaded")
                            await send("error", {k: error[k] for k in ("type", "error")})
                            return response
                        if "[cut-midway]" in script:
                            return response
                        if "[long]" in script:
                            await asyncio.sleep(0.05)
            delta = {"stop_reason": answer["stop_reason"], "stop_sequence": answer["stop_sequence"]}
            usage = {"output_tokens": answer["usage"]["output_tokens"]}
            await send("message_delta", {"type": "message_delta", "delta": delta, "usage": usage})
            await send("message_stop", {"type": "message_stop"})
        except (ConnectionResetError, asyncio.CancelledError):
            self.aborted_streams += 1
            raise
        return response


def _prompt_blocks(body: JSON) -> list[Any]:
    """Tools, system and message content, in the order Anthropic caches them."""
    blocks: list[Any] = [*(body.get("tools") or [])]
    system = body.get("system")
    blocks += [system] if isinstance(system, str) else (system or [])
    for message in body["messages"]:
        content = message["content"]
        blocks += [content] if isinstance(content, str) else content
    return blocks


def _prompt_sizes(body: JSON) -> list[int]:
    return [_tokens(block) for block in _prompt_blocks(body)]


def count_prompt(body: JSON) -> int:
    """The input tokens of a request, as count_tokens and usage (cache split aside) say."""
    return sum(_prompt_sizes(body))


def _block_events(index: int, block: JSON) -> list[tuple[str, JSON]]:
    """The content_block_start / _delta / _stop events of one content block."""
    kind = block["type"]
    if kind == "text":
        empty: JSON = {"type": "text", "text": ""}
        words = block["text"].split(" ")
        pieces = [w if i == 0 else " " + w for i, w in enumerate(words)]
        deltas = [{"type": "text_delta", "text": p} for p in pieces]
    elif kind == "thinking":
        empty = {"type": "thinking", "thinking": ""}
        half = len(block["thinking"]) // 2
        parts = (block["thinking"][:half], block["thinking"][half:])
        deltas = [{"type": "thinking_delta", "thinking": p} for p in parts]
        deltas.append({"type": "signature_delta", "signature": block["signature"]})
    else:
        empty = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
        raw = json.dumps(block["input"])
        third = max(len(raw) // 3, 1)
        pieces = ["", raw[:third], raw[third : 2 * third], raw[2 * third :]]
        deltas = [{"type": "input_json_delta", "partial_json": p} for p in pieces]
    return [
        ("content_block_start", {"index": index, "content_block": empty}),
        *(("content_block_delta", {"index": index, "delta": d}) for d in deltas),
        ("content_block_stop", {"index": index}),
    ]
