"""Typed catalog entries, as read from TOML.

msgspec validates each entry on conversion; `loader.py` adds the file and entry to any
error so an operator can find the mistake.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

NonNegative = Annotated[float, msgspec.Meta(ge=0)]
Slug = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9._-]*$")]
ModelId = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9._-]*/[a-z0-9][a-z0-9._:-]*$")]


class Price(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """USD per one million tokens of each kind."""

    prompt: NonNegative = 0.0
    completion: NonNegative = 0.0
    cache_read: NonNegative | None = None
    cache_write: NonNegative | None = None
    reasoning: NonNegative | None = None


class ProviderSpec(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    id: Slug
    # A kind the provider registry knows; the loader checks it.
    kind: str
    name: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    region: str | None = None
    zdr: bool = False
    data_collection: Literal["allow", "deny"] = "deny"
    connect_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 10.0
    first_token_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 60.0
    total_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 600.0
    # The kind's own fields (its `provider_options` struct), which the operator writes on
    # the entry itself; set by the loader.
    options: msgspec.Struct | None = None

    @property
    def display_name(self) -> str:
        return self.name or self.id


class EndpointSpec(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    provider: Slug
    # The model name the upstream knows. For kind "local": "builtin:gemma-3-270m" (the
    # GGUF shipped on PyPI) or a path to any GGUF file.
    upstream_model: str
    price: Price = Price()
    context_length: Annotated[int, msgspec.Meta(ge=1)] | None = None
    max_output: Annotated[int, msgspec.Meta(ge=1)] | None = None
    quantization: str | None = None
    # Parameters this endpoint accepts; None means the provider kind's defaults.
    supported_parameters: list[str] | None = None
    # The provider kind's own endpoint fields (its `endpoint_options`), as for ProviderSpec.
    options: msgspec.Struct | None = None


class ModelSpec(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    id: ModelId
    name: str
    endpoints: Annotated[list[EndpointSpec], msgspec.Meta(min_length=1)]
    # "chat": served by the chat front doors; "embedding": by /v1/embeddings only.
    type: Literal["chat", "embedding"] = "chat"
    # An embedding model's vector size.
    dimensions: Annotated[int, msgspec.Meta(ge=1)] | None = None
    aliases: list[str] = []
    description: str = ""
    created: str | None = None
    context_length: Annotated[int, msgspec.Meta(ge=1)] = 4096
    max_output: Annotated[int, msgspec.Meta(ge=1)] | None = None
    input_modalities: list[Literal["text", "image", "file", "audio"]] = msgspec.field(
        default_factory=lambda: ["text"]
    )
    output_modalities: list[Literal["text", "embeddings"]] = msgspec.field(
        default_factory=lambda: ["text"]
    )
    # The model family whose tokenizer it uses, as OpenRouter names it ("Claude", "Gemma",
    # "GPT", "Llama3", "Other", ...); None: not said.
    tokenizer: str | None = None
    rpm: Annotated[int, msgspec.Meta(ge=1)] | None = None
    tpm: Annotated[int, msgspec.Meta(ge=1)] | None = None
    prompt_cache_min_tokens: Annotated[int, msgspec.Meta(ge=0)] | None = None
    # The answer's length limit when a request sets none (local models; None: max_output).
    default_max_tokens: Annotated[int, msgspec.Meta(ge=1)] | None = None
