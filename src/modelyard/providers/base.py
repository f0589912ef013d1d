"""The provider seam: what every wire-protocol adapter implements, and what it returns.

Adapters translate a validated `ChatRequest` to their upstream, and normalise the answer
to `Completion` (non-streaming) or a sequence of `Delta` events ending in one `Finish`
(streaming). They raise only `UpstreamError` (or `InvalidRequest` for input that this
upstream cannot take), so fallback, limits and metrics can wrap any of them alike.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from modelyard.catalog import Endpoint
from modelyard.schema.chat import ChatRequest

if TYPE_CHECKING:
    from modelyard.schema.embeddings import EmbeddingsRequest


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
    stop_sequence: str | None = None  # the stop sequence that ended the answer, if known
    # The upstream's own answer, when it speaks the client's dialect (see NativeRequest):
    # the front door of that dialect sends it on as it came.
    native: Any = None


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
    # The upstream's own SSE event(s) this piece came from, on a native call (framed
    # bytes, ready to relay); a Delta with nothing else set carries only such events.
    native: bytes | None = None


@dataclass(slots=True)
class Finish:
    """The last event of a stream."""

    finish_reason: str
    native_finish_reason: str
    usage: Usage
    native: bytes | None = None  # the upstream's closing event(s), on a native call
    stop_sequence: str | None = None  # the stop sequence that ended the answer, if known


StreamEvent = Delta | Finish


@dataclass(frozen=True, slots=True)
class NativeRequest:
    """A request as its client sent it, in a dialect some upstreams speak natively
    (`dialect`, e.g. "anthropic.messages"). An adapter that speaks it sends `body` on
    (less what the upstream does not know) instead of translating the internal request,
    so blocks, cache markers and thinking signatures survive, and answers in kind."""

    dialect: str
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)  # e.g. anthropic-beta


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


class NativeProvider(Provider, Protocol):
    """An adapter that also takes requests in a client dialect as they were sent."""

    native_dialect: ClassVar[str]

    async def complete_native(
        self, native: NativeRequest, request: ChatRequest, endpoint: Endpoint
    ) -> Completion:
        """The answer, with `Completion.native` holding the upstream's own body."""
        ...

    def stream_native(
        self, native: NativeRequest, request: ChatRequest, endpoint: Endpoint
    ) -> AsyncGenerator[StreamEvent, None]:
        """Events carrying the upstream's own SSE events in `native`."""
        ...

    async def count_native(self, native: NativeRequest, endpoint: Endpoint) -> int:
        """The upstream's own count of the prompt's tokens."""
        ...


def native_speaker(provider: Provider, native: NativeRequest | None) -> NativeProvider | None:
    """`provider`, if it speaks the dialect `native` came in."""
    if native is None or getattr(provider, "native_dialect", None) != native.dialect:
        return None
    return provider  # type: ignore[return-value]


class TokenCounter(Protocol):
    """An adapter that can count a prompt's tokens with the model's own tokenizer."""

    async def count_tokens(self, request: ChatRequest, endpoint: Endpoint) -> int: ...


def token_counter(provider: Provider) -> TokenCounter | None:
    """`provider`, if it counts prompt tokens itself."""
    return provider if hasattr(provider, "count_tokens") else None  # type: ignore[return-value]


@dataclass(slots=True)
class Embeddings:
    """One vector per input, in input order, and the tokens they took."""

    vectors: list[list[float]]
    usage: Usage


class Embedder(Protocol):
    """An adapter that serves embedding models (`/v1/embeddings`)."""

    async def embed(self, request: EmbeddingsRequest, endpoint: Endpoint) -> Embeddings: ...


def embedder(provider: Provider) -> Embedder | None:
    """`provider`, if it serves embeddings."""
    return provider if hasattr(provider, "embed") else None  # type: ignore[return-value]


def output_tokens(request: ChatRequest, endpoint: Endpoint) -> int:
    """The most tokens the answer may use on this endpoint: the request's max_tokens,
    within the endpoint's max output (its max output when the request sets none)."""
    limit = request.output_limit
    return endpoint.max_output if limit is None else min(limit, endpoint.max_output)


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
