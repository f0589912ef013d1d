"""An OpenAI-style upstream that drops reused connections after reading the request.

A real HTTP/1.1 server on 127.0.0.1 (asyncio, in a thread of its own). On each connection
it answers the first request normally and keeps the connection alive; every later request
on that connection is read in full (head and body: the upstream has it, and would be
generating), then, after `delay_s`, the connection is closed without an answer, as a load
balancer that recycles connections or an upstream that crashes mid-generation does.

It records every POST body it read, so a test can count how often one request arrived.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field
from typing import Any

COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "fine"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
}


def _sse(body: dict[str, Any]) -> bytes:
    data = b"data: " + json.dumps(body).encode() + b"\n\n"
    return b"%x\r\n%s\r\n" % (len(data), data)


STREAM = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    + _sse(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {"content": "fine"}, "finish_reason": "stop"}],
        }
    )
    + _sse({"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [], **COMPLETION})
    + b"e\r\ndata: [DONE]\n\n\r\n0\r\n\r\n"
)


def _plain() -> bytes:
    body = json.dumps(COMPLETION).encode()
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
    return head % len(body) + body


@dataclass
class Received:
    body: bytes
    connection: int  # which connection it came on (1, 2, ...)
    answered: bool


@dataclass
class DroppingUpstream:
    delay_s: float = 0.0
    port: int = 0
    received: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._connections = 0
        self._handlers: set[asyncio.Task[None]] = set()
        self._lock = threading.Lock()

    def __enter__(self) -> DroppingUpstream:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def times_received(self, marker: bytes) -> int:
        """How many POSTs carried `marker` in their body."""
        with self._lock:
            return sum(marker in seen.body for seen in self.received)

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for handler in self._handlers:
            handler.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections += 1
        connection = self._connections
        handler = asyncio.current_task()
        assert handler is not None
        self._handlers.add(handler)
        first = True
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                body = await reader.readexactly(length)
                with self._lock:
                    self.received.append(Received(body, connection, answered=first))
                if not first:
                    await asyncio.sleep(self.delay_s)  # "generating", then the drop
                    return
                first = False
                writer.write(STREAM if b'"stream":true' in body.replace(b" ", b"") else _plain())
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except asyncio.CancelledError:
            return  # stopping: asyncio's server would log a cancelled handler as an error
        finally:
            writer.close()
            self._handlers.discard(handler)
