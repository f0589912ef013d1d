"""A Messages API request sent to an Anthropic upstream as its client wrote it.

Translating Anthropic → internal → Anthropic loses what the internal form has no room
for (thinking signatures, citations, cache markers on any block, server tools), so a
request that came through /v1/messages goes to an `anthropic` upstream as it was sent,
with only what that upstream must not see changed: the model is the endpoint's, a
max_tokens above the endpoint's max output is lowered, and fields that are not Messages
API parameters (OpenRouter's `models`, `provider`, `session_id`, anything unknown) are
left out. Fields of Anthropic's beta features go on only with an `anthropic-beta` header,
as the API takes them only then.
"""

from __future__ import annotations

from typing import Any

from modelyard.catalog import Endpoint
from modelyard.providers.base import NativeRequest

DIALECT = "anthropic.messages"

# Parameters of POST /v1/messages (API version 2023-06-01).
MESSAGES_FIELDS = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "system",
        "metadata",
        "stop_sequences",
        "stream",
        "temperature",
        "top_p",
        "top_k",
        "tools",
        "tool_choice",
        "thinking",
        "service_tier",
        "cache_control",
        "inference_geo",
        "output_config",
    }
)
# Parameters that need an anthropic-beta header.
BETA_FIELDS = frozenset({"context_management", "container", "mcp_servers", "speed"})
# Parameters of POST /v1/messages/count_tokens.
COUNT_FIELDS = frozenset(
    {"model", "messages", "system", "tools", "tool_choice", "thinking", "cache_control"}
)
# Client headers that reach the upstream (the key never does: it is the gateway's).
FORWARDED_HEADERS = ("anthropic-version", "anthropic-beta")


def native_body(native: NativeRequest, endpoint: Endpoint, *, stream: bool) -> dict[str, Any]:
    known = _known(native, MESSAGES_FIELDS)
    body = {name: value for name, value in native.body.items() if name in known}
    body["model"] = endpoint.upstream_model
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, int) and max_tokens > endpoint.max_output:
        body["max_tokens"] = endpoint.max_output
    if stream:
        body["stream"] = True
    else:
        body.pop("stream", None)
    messages = body.get("messages")
    if isinstance(messages, list):
        body["messages"] = [_without_unsigned_thinking(m) for m in messages]
    return body


def _without_unsigned_thinking(message: Any) -> Any:
    """Thinking that another upstream produced (rendered here with an empty signature) is
    refused by Anthropic when sent back: it goes, signed thinking stays."""
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, list) or not any(_unsigned(block) for block in content):
        return message
    return {**message, "content": [block for block in content if not _unsigned(block)]}


def _unsigned(block: Any) -> bool:
    return (
        isinstance(block, dict) and block.get("type") == "thinking" and not block.get("signature")
    )


def count_body(native: NativeRequest, endpoint: Endpoint) -> dict[str, Any]:
    known = _known(native, COUNT_FIELDS)
    body = {name: value for name, value in native.body.items() if name in known}
    body["model"] = endpoint.upstream_model
    return body


def native_headers(native: NativeRequest) -> dict[str, str]:
    return {name: native.headers[name] for name in FORWARDED_HEADERS if name in native.headers}


def _known(native: NativeRequest, fields: frozenset[str]) -> frozenset[str]:
    return fields | BETA_FIELDS if "anthropic-beta" in native.headers else fields
