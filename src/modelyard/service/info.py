"""What a front door tells the service about a request beyond the request itself."""

from __future__ import annotations

from dataclasses import dataclass

from modelyard.providers.base import NativeRequest


@dataclass(frozen=True, slots=True)
class CallInfo:
    # Which API the request came through, as the ledger's `api` column names it.
    api: str = "chat.completions"
    http_referer: str | None = None
    x_title: str | None = None
    # The X-Session-Id header: which conversation the request belongs to.
    session_header: str | None = None
    # The request as the client sent it, for an upstream that speaks the same dialect.
    native: NativeRequest | None = None
    # A max_tokens above the model's max output is lowered to it, not refused (Anthropic
    # clients such as Claude Code send 32,000 to every model).
    clamp_output: bool = False
    # What the door serves: "chat" models, or "embedding" models (/v1/embeddings).
    model_type: str = "chat"
