"""A fake OpenAI upstream that is never the bottleneck: canned answers from a raw asyncio
protocol on uvloop, HTTP/1.1 keep-alive, parsed by httptools.

POST …/chat/completions answers a chat.completion, or, when the body asks for
`"stream": true`, an SSE stream: a role chunk, CHUNKS content chunks (each "tok"), a
finishing chunk, a usage chunk and [DONE]. Anything else answers 200 `{}`.

    .venv/bin/python -m bench.upstream --port 9000 [--chunks 200]
"""

from __future__ import annotations

import argparse
import asyncio
import re
from typing import cast

import httptools
import orjson
import uvloop

MODEL = "fake-model"
CONTENT = "tok"  # every streamed content chunk; the bench client counts these
USAGE = {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19}
_STREAM_FLAG = re.compile(rb'"stream"\s*:\s*true')


def completion_response() -> bytes:
    body = orjson.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": 1700000000,
            "model": MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "Hello from the fake upstream."},
                    "finish_reason": "stop",
                }
            ],
            "usage": USAGE,
        }
    )
    return _head(b"application/json", f"Content-Length: {len(body)}") + body


def stream_response(chunks: int) -> tuple[bytes, bytes]:
    """The SSE answer in two writes: head, role and first content chunk; then the rest."""

    def event(choices: list[object], usage: object = None) -> bytes:
        data = {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": MODEL,
            "choices": choices,
        }
        if usage is not None:
            data["usage"] = usage
        return _chunk(b"data: " + orjson.dumps(data) + b"\n\n")

    def choice(delta: object, finish: str | None = None) -> list[object]:
        return [{"index": 0, "delta": delta, "finish_reason": finish}]

    content = event(choice({"content": CONTENT}))
    first = (
        _head(b"text/event-stream", "Transfer-Encoding: chunked")
        + event(choice({"role": "assistant", "content": ""}))
        + content
    )
    rest = (
        content * (chunks - 1)
        + event(choice({}, "stop"))
        + event([], USAGE)
        + _chunk(b"data: [DONE]\n\n")
        + b"0\r\n\r\n"
    )
    return first, rest


def _head(content_type: bytes, length_header: str) -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: "
        + content_type
        + b"\r\n"
        + length_header.encode()
        + b"\r\n\r\n"
    )


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class Canned:
    """The prebuilt answers, shared by all connections."""

    def __init__(self, chunks: int) -> None:
        self.completion = completion_response()
        self.stream = stream_response(chunks)
        self.other = _head(b"application/json", "Content-Length: 2") + b"{}"


class UpstreamProtocol(asyncio.Protocol):
    def __init__(self, canned: Canned) -> None:
        self._canned = canned
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._url = b""
        self._body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            if self._transport is not None:
                self._transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._url = b""
        self._body.clear()

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        canned = self._canned
        if self._url.endswith(b"/chat/completions"):
            if _STREAM_FLAG.search(b"".join(self._body)):
                transport.write(canned.stream[0])
                transport.write(canned.stream[1])
            else:
                transport.write(canned.completion)
        else:
            transport.write(canned.other)
        if not self._parser.should_keep_alive():
            transport.close()


async def serve(host: str, port: int, chunks: int) -> None:
    canned = Canned(chunks)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: UpstreamProtocol(canned), host, port, backlog=4096)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--chunks", type=int, default=200, help="content chunks per stream")
    args = parser.parse_args()
    uvloop.run(serve(args.host, args.port, args.chunks))


if __name__ == "__main__":
    main()
