"""The Chat Completions body for an `openai` upstream: the request as the client sent it,
minus the parameters the endpoint does not support."""

from __future__ import annotations

from typing import Any

import msgspec

from modelyard.catalog import Endpoint
from modelyard.catalog.parameters import SAMPLING_FIELDS
from modelyard.providers.base import JSONDict
from modelyard.schema.chat import ChatRequest

# Request fields sent as they are when the client set them and the endpoint supports them.
_PASSTHROUGH = (*SAMPLING_FIELDS, "stop", "logit_bias", "response_format", "reasoning")


def request_body(request: ChatRequest, endpoint: Endpoint) -> JSONDict:
    """The upstream's body: only what the client set and this endpoint supports."""
    supported = endpoint.supported_parameters
    body: JSONDict = {"model": endpoint.upstream_model, "messages": _plain(request.messages)}
    for name in _PASSTHROUGH:
        value = getattr(request, name)
        if value is not None and name in supported:
            body[name] = _plain(value)
    limit = request.output_limit
    if limit is not None and "max_tokens" in supported:
        body["max_tokens"] = min(limit, endpoint.max_output)
    if request.logprobs is not None and "logprobs" in supported:
        body["logprobs"] = request.logprobs
        # OpenAI rejects top_logprobs without logprobs.
        if request.logprobs and request.top_logprobs is not None and "top_logprobs" in supported:
            body["top_logprobs"] = request.top_logprobs
    if request.tools and "tools" in supported:
        body["tools"] = _plain(request.tools)
        # tool_choice and parallel_tool_calls are refused without tools.
        for name in ("tool_choice", "parallel_tool_calls"):
            value = getattr(request, name)
            if value is not None and name in supported:
                body[name] = _plain(value)
    if request.user is not None:
        # Attribution, not a model parameter: every Chat Completions server accepts it.
        body["user"] = request.user
    return body


def _plain(value: Any) -> Any:
    """Request structs as JSON values, leaving out the fields the client did not set.

    Unlike `msgspec.to_builtins` this drops None-valued struct fields, but keeps nulls
    inside free-form JSON (a tool's JSON Schema may say `"default": null`)."""
    if isinstance(value, msgspec.Struct):
        config = value.__struct_config__
        out: JSONDict = {}
        if config.tag_field is not None:
            out[config.tag_field] = config.tag
        for name in value.__struct_fields__:
            item = getattr(value, name)
            if item is not None:
                out[name] = _plain(item)
        return out
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value
