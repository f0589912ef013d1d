"""Which request parameters each wire protocol understands, unless an endpoint says otherwise.

Parameters outside an endpoint's set are dropped before the call (SPEC §1), and
`provider.require_parameters` filters endpoints on them.
"""

from __future__ import annotations

# The request's scalar sampling fields, in the order we show them.
SAMPLING_FIELDS = (
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "top_a",
    "frequency_penalty",
    "presence_penalty",
    "repetition_penalty",
    "seed",
)
SAMPLING = frozenset(SAMPLING_FIELDS) | {"logit_bias", "logprobs", "top_logprobs"}
ALWAYS = frozenset({"max_tokens", "stop"})

DEFAULT_PARAMETERS: dict[str, frozenset[str]] = {
    "local": ALWAYS
    | (SAMPLING - {"top_a"})
    | {"tools", "tool_choice", "response_format", "structured_outputs"},
    "openai": ALWAYS
    | SAMPLING
    | {"tools", "tool_choice", "parallel_tool_calls", "response_format", "structured_outputs"},
    "anthropic": ALWAYS | {"temperature", "top_p", "top_k", "tools", "tool_choice", "reasoning"},
}

# Every parameter name that `supported_parameters` in a catalog may list.
KNOWN_PARAMETERS = frozenset().union(*DEFAULT_PARAMETERS.values()) | {
    "include_reasoning",
    "parallel_tool_calls",
}
