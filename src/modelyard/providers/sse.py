"""Server-Sent Events parsing for upstream streams.

Tolerates what real upstreams send: comment lines (`: keep-alive`, `: OPENROUTER PROCESSING`),
CRLF or LF line ends, lines split across network reads, multi-line `data:` fields, and
`event:` names (Anthropic's protocol). See the WHATWG EventSource parsing rules.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SseEvent:
    event: str  # "message" when the stream names none
    data: str


class SseParser:
    """Feed it the bytes of a stream as they arrive; it yields the events they complete.

    Work is linear in the bytes (the line ends are found by `bytes.splitlines`, in C), and
    events are parsed as they are taken, so the first event of a large read goes on its
    way before the rest is parsed. Take every event of one `feed` before the next.
    """

    def __init__(self) -> None:
        self._buffer = b""
        self._skip_newline = False  # the last read ended on "\r": a "\n" may complete it
        self._event = ""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> Iterator[SseEvent]:
        if self._skip_newline and chunk:
            self._skip_newline = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        buffer = self._buffer + chunk if self._buffer else chunk
        end = max(buffer.rfind(b"\n"), buffer.rfind(b"\r"))
        if end == -1:
            self._buffer = buffer
            return iter(())
        self._buffer = buffer[end + 1 :]
        self._skip_newline = buffer[end] == 0x0D and end == len(buffer) - 1
        return self._events(buffer[: end + 1].splitlines())

    def _events(self, lines: list[bytes]) -> Iterator[SseEvent]:
        for raw in lines:
            if not raw:
                if self._data:
                    yield SseEvent(self._event or "message", "\n".join(self._data))
                self._event, self._data = "", []
                continue
            if raw[0] == 0x3A:  # ":" starts a comment
                continue
            name, _, value = raw.decode("utf-8", "replace").partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                self._data.append(value)
            elif name == "event":
                self._event = value
