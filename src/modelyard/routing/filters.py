"""Hard filters: why an endpoint cannot take this request (None when it can).

The reasons are shown to the client in the 503 that lists what excluded each endpoint,
so they say which preference or capability was not met.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from modelyard.catalog import Endpoint
from modelyard.schema.chat import (
    ChatRequest,
    JsonObjectFormat,
    JsonSchemaFormat,
    ProviderPreferences,
    TextPart,
)

NO_PREFERENCES = ProviderPreferences()
# Routing only knows characters. Real text averages ~4 characters a token; counting 8 gives
# a lower bound for almost any text, so a prompt that may fit is never filtered here (the
# provider, which can count tokens, is the one that rejects an exact overflow).
CHARS_PER_TOKEN = 8


def exclusion_reason(endpoint: Endpoint, request: ChatRequest, *, zdr_key: bool) -> str | None:
    prefs = request.provider or NO_PREFERENCES
    for check in _CHECKS:
        reason = check(endpoint, request, prefs, zdr_key)
        if reason is not None:
            return reason
    return None


Check = Callable[[Endpoint, ChatRequest, ProviderPreferences, bool], str | None]


def _only_ignore(ep: Endpoint, _: ChatRequest, prefs: ProviderPreferences, __: bool) -> str | None:
    if prefs.only is not None and ep.provider.id not in prefs.only:
        return "not in provider.only"
    if prefs.ignore is not None and ep.provider.id in prefs.ignore:
        return "in provider.ignore"
    return None


def _privacy(ep: Endpoint, _: ChatRequest, prefs: ProviderPreferences, zdr_key: bool) -> str | None:
    if (prefs.zdr or zdr_key) and not ep.provider.zdr:
        why = "the key is ZDR" if zdr_key else "provider.zdr"
        return f"not a zero-data-retention provider ({why})"
    if prefs.data_collection == "deny" and ep.provider.data_collection == "allow":
        return "may retain data (provider.data_collection is deny)"
    return None


def _quantization(ep: Endpoint, _: ChatRequest, prefs: ProviderPreferences, __: bool) -> str | None:
    wanted = prefs.quantizations
    if wanted is not None and (ep.spec.quantization or "unknown") not in wanted:
        return f"quantization {ep.spec.quantization or 'unknown'} not in provider.quantizations"
    return None


def _price(ep: Endpoint, _: ChatRequest, prefs: ProviderPreferences, __: bool) -> str | None:
    limit = prefs.max_price
    if limit is None:
        return None
    if limit.prompt is not None and ep.price.prompt > limit.prompt:
        return f"prompt price ${ep.price.prompt}/M above provider.max_price.prompt"
    if limit.completion is not None and ep.price.completion > limit.completion:
        return f"completion price ${ep.price.completion}/M above provider.max_price.completion"
    return None


def _parameters(ep: Endpoint, req: ChatRequest, prefs: ProviderPreferences, __: bool) -> str | None:
    supported = ep.supported_parameters
    if prefs.require_parameters:
        missing = sorted(req.sent_parameters() - supported)
        if missing:
            return f"does not support {', '.join(missing)} (provider.require_parameters)"
    # Capabilities the answer depends on are required whatever the preferences say.
    if req.tools and req.tool_choice != "none" and "tools" not in supported:
        return "does not support tools"
    structured = isinstance(req.response_format, JsonObjectFormat | JsonSchemaFormat)
    if structured and "response_format" not in supported:
        return "does not support response_format"
    return None


def _size(ep: Endpoint, req: ChatRequest, _: ProviderPreferences, __: bool) -> str | None:
    if ep.model.type == "embedding":
        return None  # each input must fit, not their sum: the adapter checks them
    estimate = min_prompt_tokens(req)
    if estimate > ep.context_length:
        return f"prompt (at least {estimate} tokens) exceeds its context length {ep.context_length}"
    limit = req.output_limit
    if limit is not None and limit > ep.max_output:
        return f"max_tokens {limit} above its max output {ep.max_output}"
    return None


def min_prompt_tokens(request: ChatRequest) -> int:
    return _prompt_chars(request) // CHARS_PER_TOKEN


def typical_prompt_tokens(request: ChatRequest) -> int:
    """A middle-of-the-road count (four characters a token, a few per message, the tool
    schemas included): what count_tokens answers when nothing can count for real."""
    tools = sum(len(msgspec.json.encode(tool)) for tool in request.tools or ())
    return (_prompt_chars(request) + tools) // 4 + 4 * len(request.messages)


def _prompt_chars(request: ChatRequest) -> int:
    total = 0
    for message in request.messages:
        content = getattr(message, "content", None)
        if isinstance(content, str):
            total += len(content)
        elif isinstance(content, list):
            total += sum(len(p.text) for p in content if isinstance(p, TextPart))
    return total


_CHECKS: tuple[Check, ...] = (_only_ignore, _privacy, _quantization, _price, _parameters, _size)
