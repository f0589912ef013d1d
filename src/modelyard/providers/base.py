"""The provider seam: what every wire-protocol adapter implements, and what it returns.

Adapters translate a validated `ChatRequest` to their upstream, and normalise the answer
to `Completion` (non-streaming) or a sequence of `Delta` events ending in one `Finish`
(streaming). They raise only `UpstreamError` (or `InvalidRequest` for input that this
upstream cannot take), so fallback, limits and metrics can wrap any of them alike.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from modelyard.catalog import Endpoint
from modelyard.schema.chat import ChatRequest


@dataclass(slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str


@dataclass(slots=True)
class TokenLogprob:
    token: str
    logprob: float
    top: list[tuple[str, float]] = field(default_factory=list)


@dataclass(slots=True)
class Completion:
    content: str | None
    finish_reason: str
    native_finish_reason: str
    usage: Usage
    tool_calls: list[ToolCall] = field(default_factory=list)
    reasoning: str | None = None
    logprobs: list[TokenLogprob] | None = None


@dataclass(slots=True)
class ToolCallDelta:
    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(slots=True)
class Delta:
    """A piece of the answer as it is generated."""

    content: str | None = None
    reasoning: str | None = None
    tool_calls: list[ToolCallDelta] | None = None
    logprobs: list[TokenLogprob] | None = None
    # The prompt's counts (prompt, cached, cache write), when the upstream reports them
    # before the end (Anthropic's message_start does): what a stream cut short is billed
    # for its prompt.
    prompt_usage: Usage | None = None


@dataclass(slots=True)
class Finish:
    """The last event of a stream."""

    finish_reason: str
    native_finish_reason: str
    usage: Usage


StreamEvent = Delta | Finish


class Provider(Protocol):
    """One wire protocol (catalog `kind`); one instance serves every endpoint of that kind."""

    kind: ClassVar[str]

    def unavailable_reason(self, endpoint: Endpoint) -> str | None:
        """Why this endpoint cannot be called now (e.g. a missing API key), or None."""

    async def complete(self, request: ChatRequest, endpoint: Endpoint) -> Completion: ...

    def stream(self, request: ChatRequest, endpoint: Endpoint) -> AsyncGenerator[StreamEvent, None]:
        """Events of the answer. Closing the iterator early cancels the generation."""
        ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


def finish_reason_of(native: str) -> str:
    """Normalise an upstream's finish reason to stop|length|tool_calls|content_filter|error."""
    return _FINISH_REASONS.get(native, "stop")


_FINISH_REASONS: dict[str, str] = {
    "stop": "stop",
    "end_turn": "stop",
    "stop_sequence": "stop",
    "eos": "stop",
    "length": "length",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_calls": "tool_calls",
    "tool_use": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
    "refusal": "content_filter",
    "error": "error",
}

JSONDict = dict[str, Any]
