"""Render completions, stream chunks and usage in the OpenAI (+ OpenRouter) shapes."""

from __future__ import annotations

import secrets
import time
from decimal import Decimal
from typing import Any

import orjson

from modelyard.errors import GatewayError
from modelyard.providers.base import Completion, Delta, TokenLogprob, Usage


def generation_id() -> str:
    """`gen-<unix seconds>-<80 random bits>`, as OpenRouter's: ids sort by time, so the
    ledger's primary-key index grows at its end instead of taking random inserts."""
    return f"gen-{int(time.time())}-{secrets.token_hex(10)}"


def usage_body(usage: Usage, cost: Decimal) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {
            "cached_tokens": usage.cached_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
        },
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "cost": float(cost),
    }


def token_logprobs(items: list[TokenLogprob]) -> list[dict[str, Any]]:
    """Each token's logprob and its alternatives, as both OpenAI APIs (Chat Completions'
    `logprobs.content`, Responses' `output_text.logprobs`) give them."""
    return [
        {
            "token": item.token,
            "logprob": item.logprob,
            "bytes": list(item.token.encode("utf-8")),
            "top_logprobs": [
                {"token": t, "logprob": lp, "bytes": list(t.encode("utf-8"))} for t, lp in item.top
            ],
        }
        for item in items
    ]


def _logprobs_body(items: list[TokenLogprob] | None) -> dict[str, Any] | None:
    if items is None:
        return None
    return {"content": token_logprobs(items), "refusal": None}


def completion_body(
    gen_id: str, created: int, model: str, provider: str, result: Completion, cost: Decimal
) -> bytes:
    message: dict[str, Any] = {"role": "assistant", "content": result.content, "refusal": None}
    if result.tool_calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in result.tool_calls
        ]
    if result.reasoning is not None:
        message["reasoning"] = result.reasoning
    return orjson.dumps(
        {
            "id": gen_id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "provider": provider,
            "system_fingerprint": None,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": result.finish_reason,
                    "native_finish_reason": result.native_finish_reason,
                    "logprobs": _logprobs_body(result.logprobs),
                }
            ],
            "usage": usage_body(result.usage, cost),
        }
    )


class ChunkWriter:
    """Builds the SSE frames of one streamed completion."""

    def __init__(self, gen_id: str, created: int, model: str, provider: str) -> None:
        self._head = {
            "id": gen_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "provider": provider,
            # No system_fingerprint: OpenRouter's chunk schema allows a string or no field
            # (the completion body's may be null), and the gateway has no fingerprint.
        }
        self._sent_role = False

    def _frame(self, body: dict[str, Any]) -> bytes:
        return b"data: " + orjson.dumps(body) + b"\n\n"

    def _choice(
        self, delta: dict[str, Any], finish: str | None, native: str | None, logprobs: Any = None
    ) -> dict[str, Any]:
        if not self._sent_role:
            delta = {"role": "assistant", **delta}
            self._sent_role = True
        return {
            "index": 0,
            "delta": delta,
            "finish_reason": finish,
            "native_finish_reason": native,
            "logprobs": logprobs,
        }

    def delta(self, event: Delta) -> bytes:
        delta: dict[str, Any] = {}
        if event.content is not None:
            delta["content"] = event.content
        if event.reasoning is not None:
            delta["reasoning"] = event.reasoning
        if event.tool_calls:
            calls = []
            for call in event.tool_calls:
                item: dict[str, Any] = {
                    "index": call.index,
                    "function": {"arguments": call.arguments},
                }
                if call.id is not None:
                    item["id"] = call.id
                    item["type"] = "function"
                if call.name is not None:
                    item["function"]["name"] = call.name
                calls.append(item)
            delta["tool_calls"] = calls
        choice = self._choice(delta, None, None, _logprobs_body(event.logprobs))
        return self._frame({**self._head, "choices": [choice]})

    def finish(self, finish_reason: str, native_finish_reason: str) -> bytes:
        choice = self._choice({}, finish_reason, native_finish_reason)
        return self._frame({**self._head, "choices": [choice]})

    def usage(self, usage: Usage, cost: Decimal) -> bytes:
        return self._frame({**self._head, "choices": [], "usage": usage_body(usage, cost)})

    def error(self, error: GatewayError) -> bytes:
        body = {
            **self._head,
            "error": {
                "code": error.status,
                "message": error.message,
                "metadata": {**error.metadata, "error_type": error.error_type},
            },
            "choices": [self._choice({"content": ""}, "error", "error")],
        }
        return self._frame(body)


DONE = b"data: [DONE]\n\n"
KEEPALIVE = b": keep-alive\n\n"
