"""What kind `local` declares to the catalog; imports no llama.cpp, so the catalog can
validate local entries in a gateway that does not load the embedded models."""

from __future__ import annotations

from typing import Annotated

import msgspec

from modelyard.catalog.kinds import ProviderKindInfo
from modelyard.catalog.parameters import ALWAYS, SAMPLING
from modelyard.catalog.spec import EndpointSpec, ProviderSpec


class LocalProviderOptions(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    # llama.cpp threads and the most requests allowed to wait.
    threads: Annotated[int, msgspec.Meta(ge=1)] | None = None
    max_queue: Annotated[int, msgspec.Meta(ge=1)] = 64
    # Memory for saved prompt states (KV prefix reuse across conversations), in MB.
    kv_cache_mb: Annotated[int, msgspec.Meta(ge=0)] = 512


class LocalEndpointOptions(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    # Turn format when the GGUF carries no chat template, e.g. "gemma".
    chat_format: str | None = None


def provider_options(spec: ProviderSpec) -> LocalProviderOptions:
    options = spec.options
    return options if isinstance(options, LocalProviderOptions) else LocalProviderOptions()


def endpoint_options(spec: EndpointSpec) -> LocalEndpointOptions:
    options = spec.options
    return options if isinstance(options, LocalEndpointOptions) else LocalEndpointOptions()


LOCAL_KIND = ProviderKindInfo(
    kind="local",
    default_parameters=ALWAYS
    | (SAMPLING - {"top_a"})
    | {"tools", "tool_choice", "response_format", "structured_outputs"},
    provider_options=LocalProviderOptions,
    endpoint_options=LocalEndpointOptions,
    # Saved prompt states are reused across requests when there is memory for them.
    implicit_caching=lambda spec: provider_options(spec).kv_cache_mb > 0,
)
