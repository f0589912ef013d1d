"""The embeddings request (OpenAI's shape, with Heroku's `input_type` and OpenRouter's
`provider`), decoded and validated from bytes in one pass, and its answer rendered.

The request service plans, limits and bills on a `ChatRequest`; `EmbeddingsCall.chat` is
that view of an embeddings request (one user message per text input), so routing
preferences, fallbacks, budgets and the ledger treat both alike. The texts themselves go
to the adapter in `EmbeddingsRequest`.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec
import numpy as np

from modelyard.errors import InvalidRequest
from modelyard.providers.base import Usage
from modelyard.schema.chat import (
    ChatRequest,
    ProviderPreferences,
    UserMessage,
    decode_object,
    validation_error,
)

# As at OpenAI: at most 2048 inputs a request.
MAX_INPUTS = 2048
InputType = Literal["search_document", "search_query", "classification", "clustering"]


class EmbeddingsRequest(msgspec.Struct, frozen=True):
    # A string, strings, token ids, or lists of token ids (msgspec takes one list type in
    # a union: the items are checked by `_check_inputs`).
    input: str | list[Any]
    model: Annotated[str, msgspec.Meta(min_length=1)] | None = None
    models: list[Annotated[str, msgspec.Meta(min_length=1)]] | None = None
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: Annotated[int, msgspec.Meta(ge=1)] | None = None
    user: str | None = None
    # Heroku's (Cohere's) hint of what the vectors are for.
    input_type: InputType | None = None
    provider: ProviderPreferences | None = None

    @property
    def texts(self) -> list[str] | None:
        """The inputs as texts, or None when they are token ids."""
        if isinstance(self.input, str):
            return [self.input]
        if self.input and isinstance(self.input[0], str):
            return list(self.input)
        return None

    @property
    def token_inputs(self) -> list[list[int]]:
        """The inputs as token ids (empty when they are texts)."""
        if not self.input or isinstance(self.input, str) or isinstance(self.input[0], str):
            return []
        if isinstance(self.input[0], int):
            return [list(self.input)]
        return [list(ids) for ids in self.input]

    @property
    def count(self) -> int:
        texts = self.texts
        return len(texts) if texts is not None else len(self.token_inputs)


@dataclass(frozen=True, slots=True)
class EmbeddingsCall:
    request: EmbeddingsRequest
    chat: ChatRequest  # the request as the service plans and bills it


def parse_embeddings_request(body: bytes, *, model_override: str | None = None) -> EmbeddingsCall:
    raw = decode_object(body)
    if model_override is not None:
        raw = {**raw, "model": model_override}
    try:
        request = msgspec.convert(raw, EmbeddingsRequest)
    except msgspec.ValidationError as exc:
        raise validation_error(exc) from exc
    if not request.model and not request.models:
        raise InvalidRequest("'model' is required.", param="model")
    _check_inputs(request)
    return EmbeddingsCall(request, _planning_view(request))


def _check_inputs(request: EmbeddingsRequest) -> None:
    _check_shape(request.input)
    texts = request.texts
    count = request.count
    if count == 0:
        raise InvalidRequest("'input' must not be empty.", param="input")
    if count > MAX_INPUTS:
        raise InvalidRequest(
            f"'input' holds {count} items, more than the limit of {MAX_INPUTS} a request.",
            param="input",
        )
    for index, text in enumerate(texts or ()):
        if not text:
            raise InvalidRequest(f"'input[{index}]' must not be empty.", param=f"input[{index}]")
    for index, ids in enumerate(request.token_inputs):
        if not ids:
            raise InvalidRequest(f"'input[{index}]' must not be empty.", param=f"input[{index}]")


def _check_shape(value: str | list[Any]) -> None:
    """All strings, all token ids, or all lists of token ids: nothing else, nothing mixed."""
    if isinstance(value, str) or not value:
        return
    first = value[0]
    if isinstance(first, str):
        kind, bad = "strings", [i for i, item in enumerate(value) if not isinstance(item, str)]
    elif isinstance(first, int) and not isinstance(first, bool):
        kind, bad = "token ids", [i for i, item in enumerate(value) if not _token(item)]
    elif isinstance(first, list):
        kind, bad = (
            "lists of token ids",
            [
                i
                for i, item in enumerate(value)
                if not isinstance(item, list) or not all(_token(t) for t in item)
            ],
        )
    else:
        kind, bad = "", [0]
    if bad:
        where = f"input[{bad[0]}]"
        expected = f"one of {kind}, as the first item is" if kind else "a string or token ids"
        raise InvalidRequest(f"'{where}' must be {expected}.", param=where)


def _token(item: Any) -> bool:
    return isinstance(item, int) and not isinstance(item, bool) and item >= 0


def _planning_view(request: EmbeddingsRequest) -> ChatRequest:
    """One user message per text (token ids: their count in characters' stead), so the
    planner's context check and the budget's prompt estimate see the inputs' size."""
    texts = request.texts
    if texts is None:
        texts = [" " * len(ids) for ids in request.token_inputs]
    return ChatRequest(
        messages=[UserMessage(content=text) for text in texts],
        model=request.model,
        models=request.models,
        user=request.user,
        provider=request.provider,
        max_tokens=1,  # an embedding has no answer to hold budget or rate limit for
    )


def embeddings_body(
    generation_id: str,
    model: str,
    provider: str,
    vectors: list[list[float]],
    usage: Usage,
    cost: Decimal,
    encoding_format: str,
) -> dict[str, Any]:
    return {
        "object": "list",
        "id": generation_id,
        "data": [
            {"object": "embedding", "index": index, "embedding": _encoded(vector, encoding_format)}
            for index, vector in enumerate(vectors)
        ],
        "model": model,
        "provider": provider,
        "usage": {
            "prompt_tokens": usage.prompt_tokens,
            "total_tokens": usage.prompt_tokens,
            "cost": float(cost),
        },
    }


def _encoded(vector: list[float], encoding_format: str) -> list[float] | str:
    if encoding_format == "base64":  # OpenAI's: little-endian float32, base64
        return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()
    return vector
