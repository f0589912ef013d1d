"""Request parameter names: the sets adapters build their defaults from (their
`ProviderKindInfo.default_parameters`), and the ones any endpoint may list.

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

# Parameters an endpoint may list that are no kind's default.
EXTRA_PARAMETERS = frozenset({"include_reasoning", "parallel_tool_calls"})
