"""Server-Sent Events parsing for upstream streams.

Tolerates what real upstreams send: comment lines (`: keep-alive`, `: OPENROUTER PROCESSING`),
CRLF or LF line ends, lines split across network reads, multi-line `data:` fields, and
`event:` names (Anthropic's protocol). See the WHATWG EventSource parsing rules.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SseEvent:
    event: str  # "message" when the stream names none
    data: str


class SseParser:
    def __init__(self) -> None:
        self._buffer = b""
        self._event = ""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[SseEvent]:
        """Events completed by this chunk of bytes, in order."""
        self._buffer += chunk
        events: list[SseEvent] = []
        while True:
            line, found = self._next_line()
            if not found:
                return events
            if not line:
                if self._data:
                    events.append(SseEvent(self._event or "message", "\n".join(self._data)))
                self._event, self._data = "", []
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                self._data.append(value)
            elif name == "event":
                self._event = value

    def _next_line(self) -> tuple[str, bool]:
        buffer = self._buffer
        newline, carriage = buffer.find(b"\n"), buffer.find(b"\r")
        if newline == -1 and carriage == -1:
            return "", False
        if carriage == -1 or (newline != -1 and newline < carriage):
            end, skip = newline, 1
        else:
            # A \r at the very end may be the first half of \r\n: wait for more bytes.
            if carriage == len(buffer) - 1:
                return "", False
            end, skip = carriage, 2 if buffer[carriage + 1] == 0x0A else 1
        self._buffer = buffer[end + skip :]
        return buffer[:end].decode("utf-8", "replace"), True
