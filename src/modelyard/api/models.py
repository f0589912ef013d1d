"""The models API in OpenRouter's shapes: GET /v1/models (paged), /v1/models/count,
/v1/model/{author}/{slug} ({"data": model}), /v1/models/{author}/{slug} (the bare model,
as the OpenAI SDK's models.retrieve reads it) and /v1/models/{author}/{slug}/endpoints.

A field the gateway has no value for is left out where OpenRouter's schema makes it
optional and null only where the schema allows null."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from modelyard.api.http import json_response
from modelyard.catalog import Endpoint, Model
from modelyard.catalog.spec import Price
from modelyard.errors import InvalidRequest, NotFound
from modelyard.gateway import Gateway
from modelyard.stats import EndpointStats

_MILLION = Decimal(1_000_000)
# What /v1/embeddings takes besides model and input; the chat sampling parameters the
# catalog derives for every endpoint mean nothing to an embedding model.
EMBEDDING_PARAMETERS = frozenset({"dimensions", "encoding_format"})


def _per_token(per_million: float | None) -> str | None:
    if per_million is None:
        return None
    value = Decimal(str(per_million)) / _MILLION
    return format(value.normalize(), "f")


def pricing_body(price: Price) -> dict[str, str]:
    body = {"prompt": _per_token(price.prompt), "completion": _per_token(price.completion)}
    extra = {
        "input_cache_read": _per_token(price.cache_read),
        "input_cache_write": _per_token(price.cache_write),
        "internal_reasoning": _per_token(price.reasoning),
    }
    body.update({k: v for k, v in extra.items() if v is not None})
    body["request"] = "0"
    body["image"] = "0"
    return {k: v for k, v in body.items() if v is not None}


def _created(model: Model) -> int:
    if not model.spec.created:
        return 0
    day = datetime.fromisoformat(model.spec.created)
    return int(day.replace(tzinfo=day.tzinfo or UTC).timestamp())


def _architecture(model: Model, *, tokenizer_required: bool) -> dict[str, Any]:
    spec = model.spec
    body: dict[str, Any] = {
        "modality": f"{'+'.join(spec.input_modalities)}->{'+'.join(spec.output_modalities)}",
        "input_modalities": spec.input_modalities,
        "output_modalities": spec.output_modalities,
        "instruct_type": None,
    }
    # The models list may leave the tokenizer out; the endpoints list needs it, or null.
    if spec.tokenizer is not None or tokenizer_required:
        body["tokenizer"] = spec.tokenizer
    return body


def _cheapest(model: Model) -> Endpoint:
    return min(model.endpoints, key=lambda ep: ep.price.prompt + ep.price.completion)


def _embedding(endpoint: Endpoint) -> bool:
    return endpoint.model.type == "embedding"


def _parameters(endpoint: Endpoint) -> frozenset[str]:
    return EMBEDDING_PARAMETERS if _embedding(endpoint) else endpoint.supported_parameters


def _max_completion(endpoint: Endpoint) -> int | None:
    # An embedding model generates no tokens: OpenRouter's null, not a token count.
    return None if _embedding(endpoint) else endpoint.max_output


def model_body(model: Model) -> dict[str, Any]:
    top = _cheapest(model)
    parameters = sorted(frozenset().union(*(_parameters(ep) for ep in model.endpoints)))
    return {
        "id": model.id,
        "object": "model",
        "owned_by": model.id.split("/", 1)[0],
        "canonical_slug": model.id,
        "name": model.spec.name,
        "created": _created(model),
        "description": model.spec.description,
        "context_length": model.spec.context_length,
        "architecture": _architecture(model, tokenizer_required=False),
        "pricing": pricing_body(top.price),
        "top_provider": {
            "context_length": top.context_length,
            "max_completion_tokens": _max_completion(top),
            "is_moderated": False,
        },
        "per_request_limits": None,
        "supported_parameters": parameters,
        "default_parameters": None,  # the catalog has no recommended sampling values
        "supported_voices": None,  # not a text-to-speech model
        "links": {"details": f"/api/v1/models/{model.id}/endpoints"},
        "aliases": model.spec.aliases,
    }


def _percent(share: float | None) -> float | None:
    return None if share is None else share * 100


def _tool_choice(parameters: frozenset[str]) -> dict[str, bool]:
    # Every adapter passes each tool_choice value on (or maps it) once it takes the field.
    supported = "tool_choice" in parameters
    return {"auto": supported, "none": supported, "required": supported, "function": supported}


def endpoint_body(endpoint: Endpoint, stats: EndpointStats | None = None) -> dict[str, Any]:
    provider = endpoint.provider
    uptime = stats.uptime if stats else {}
    return {
        "name": f"{provider.display_name} | {endpoint.upstream_model}",
        "model_id": endpoint.model.id,
        "model_name": endpoint.model.name,
        "provider_name": provider.display_name,
        "tag": provider.id,
        "context_length": endpoint.context_length,
        "max_completion_tokens": _max_completion(endpoint),
        "max_prompt_tokens": None,
        "pricing": pricing_body(endpoint.price),
        "quantization": endpoint.spec.quantization,
        "region": provider.region,
        "zdr": provider.zdr,
        "supported_parameters": sorted(_parameters(endpoint)),
        "supports_tool_choice": _tool_choice(_parameters(endpoint)),
        # As the endpoint's provider kind declares (the embedded chat models reuse prompt states).
        "supports_implicit_caching": endpoint.implicit_caching and not _embedding(endpoint),
        "supports_voice_cloning": False,
        "status": 0,
        # From the ledger (modelyard.stats); null means "no data in that window". Uptime
        # in percent, as OpenRouter's.
        "uptime_last_5m": _percent(uptime.get("5m")),
        "uptime_last_30m": _percent(uptime.get("30m")),
        "uptime_last_1d": _percent(uptime.get("1d")),
        "latency_last_30m": stats.latency.as_dict() if stats and stats.latency else None,
        "throughput_last_30m": (stats.throughput.as_dict() if stats and stats.throughput else None),
    }


def _count(request: Request, name: str, default: int | None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit():
        raise InvalidRequest(f"'{name}' must be a whole number of zero or more.", param=name)
    return int(raw)


def _selected(request: Request, models: Iterable[Model]) -> list[Model]:
    """The models the query's filters keep: `output_modalities` (comma-separated, or
    "all") and `supported_parameters` (each one supported by some endpoint)."""
    selected = list(models)
    outputs = request.query_params.get("output_modalities")
    if outputs and outputs != "all":
        wanted = set(outputs.split(","))
        selected = [m for m in selected if wanted & set(m.spec.output_modalities)]
    parameters = request.query_params.get("supported_parameters")
    if parameters:
        needed = set(parameters.split(","))
        selected = [
            m for m in selected if needed <= set().union(*(_parameters(e) for e in m.endpoints))
        ]
    return selected


class ModelsApi:
    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    async def list_models(self, request: Request) -> Response:
        models = _selected(request, self._gateway.catalog.models.values())
        offset = _count(request, "offset", 0) or 0
        limit = _count(request, "limit", None)
        end = len(models) if limit is None else offset + limit
        page = models[offset:end]
        following = None
        if limit is not None and end < len(models):
            following = str(request.url.include_query_params(offset=end, limit=limit))
        body = {
            "object": "list",
            "data": [model_body(m) for m in page],
            "total_count": len(models),
            "links": {"next": following},
        }
        return json_response(body)

    async def count_models(self, request: Request) -> Response:
        models = _selected(request, self._gateway.catalog.models.values())
        return json_response({"data": {"count": len(models)}})

    def _model(self, request: Request) -> Model:
        author, slug = request.path_params["author"], request.path_params["slug"]
        model = self._gateway.catalog.find_by_path(author, slug)
        if model is None:
            raise NotFound(f"The model '{author}/{slug}' does not exist.", param="model")
        return model

    async def get_model(self, request: Request) -> Response:
        return json_response(model_body(self._model(request)))

    async def get_model_data(self, request: Request) -> Response:
        """GET /model/{author}/{slug}: OpenRouter's one model, inside "data"."""
        return json_response({"data": model_body(self._model(request))})

    async def list_endpoints(self, request: Request) -> Response:
        model = self._model(request)
        stats = await self._gateway.stats.endpoints(model.id)
        body = {
            "id": model.id,
            "name": model.spec.name,
            "created": _created(model),
            "description": model.spec.description,
            "architecture": _architecture(model, tokenizer_required=True),
            "endpoints": [endpoint_body(ep, stats.get(ep.id)) for ep in model.endpoints],
        }
        return json_response({"data": body})
