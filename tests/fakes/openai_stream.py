"""A fake OpenAI-compatible upstream that streams slowly: a real aiohttp server on
127.0.0.1, run in a thread. The first path segment picks the behaviour:

- `slow`: `TOKENS` content chunks, `DELAY_S` apart, then the finish, the usage chunk
  (`USAGE`) and [DONE]; without `stream` the whole answer after `ANSWER_DELAY_S`.
- `dies`: `DIES_AFTER` content chunks, then the connection is aborted.
- `nousage`: `DIES_AFTER` content chunks and the finish, but never a usage.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

from aiohttp import web

TOKENS = 30
DELAY_S = 0.05
ANSWER_DELAY_S = 0.5
DIES_AFTER = 5
USAGE = {"prompt_tokens": 20, "completion_tokens": TOKENS, "total_tokens": 20 + TOKENS}


def frame(body: Any) -> bytes:
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def chunk(delta: dict[str, Any] | None, finish: str | None = None, **extra: Any) -> bytes:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return frame(
        {"id": "chatcmpl-f", "object": "chat.completion.chunk", "choices": choices, **extra}
    )


class SlowOpenAI:
    def __init__(self, port: int) -> None:
        self.port = port
        self.requests = 0
        self.in_flight = 0
        self.peak_in_flight = 0  # the most requests it was answering at once
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    def base_url(self, scenario: str) -> str:
        return f"http://127.0.0.1:{self.port}/{scenario}/v1"

    def __enter__(self) -> SlowOpenAI:
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
        self.requests += 1
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            return await self._answer(request, scenario, body)
        finally:
            self.in_flight -= 1

    async def _answer(
        self, request: web.Request, scenario: str, body: dict[str, Any]
    ) -> web.StreamResponse:
        if not body.get("stream"):
            await asyncio.sleep(ANSWER_DELAY_S)
            message = {"role": "assistant", "content": "tok " * TOKENS}
            choice = {"index": 0, "message": message, "finish_reason": "stop"}
            answer = {"id": "chatcmpl-f", "object": "chat.completion", "choices": [choice]}
            return web.json_response({**answer, "usage": USAGE})
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(chunk({"role": "assistant", "content": ""}))
        count = TOKENS if scenario == "slow" else DIES_AFTER
        for index in range(count):
            await asyncio.sleep(DELAY_S)
            await response.write(chunk({"content": f" t{index}"}))
        if scenario == "dies":
            assert request.transport is not None
            request.transport.abort()
            raise asyncio.CancelledError
        await response.write(chunk({}, "stop"))
        if scenario == "slow":
            await response.write(chunk(None, usage=USAGE))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response
