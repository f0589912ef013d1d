"""Automatic prompt-cache breakpoints for upstreams that cache on request (Anthropic).

As Heroku does for Claude: the end of the tool definitions and the end of the system prompt
get an ephemeral `cache_control` when the prefix up to there is long enough to be cached
(the model's `prompt_cache_min_tokens`). A client that places its own `cache_control`
keeps full control (Anthropic allows only four breakpoints), and a request with the
header `X-Prompt-Caching: false` gets none added.
"""

from __future__ import annotations

import json
from typing import Any

CHARS_PER_TOKEN = 4  # typical English text; only decides whether a breakpoint is worth it
EPHEMERAL = {"type": "ephemeral"}


def add_cache_breakpoints(body: dict[str, Any], min_tokens: int | None) -> None:
    if not min_tokens or _has_cache_control(body):
        return
    prefix_chars = 0
    tools = body.get("tools")
    if tools:
        prefix_chars += len(json.dumps(tools))
        if prefix_chars // CHARS_PER_TOKEN >= min_tokens:
            tools[-1]["cache_control"] = dict(EPHEMERAL)
    system = body.get("system")
    if system:
        prefix_chars += sum(len(block.get("text", "")) for block in system)
        if prefix_chars // CHARS_PER_TOKEN >= min_tokens:
            system[-1]["cache_control"] = dict(EPHEMERAL)


def _has_cache_control(value: Any) -> bool:
    if isinstance(value, dict):
        return "cache_control" in value or any(_has_cache_control(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_cache_control(v) for v in value)
    return False
