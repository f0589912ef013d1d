"""GET /v1/models, /v1/models/{author}/{slug} and /v1/models/{author}/{slug}/endpoints."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from modelyard.catalog import Endpoint, Model
from modelyard.catalog.spec import Price
from modelyard.errors import NotFound
from modelyard.gateway import Gateway
from modelyard.stats import EndpointStats

_MILLION = Decimal(1_000_000)


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


def _architecture(model: Model) -> dict[str, Any]:
    spec = model.spec
    return {
        "modality": f"{'+'.join(spec.input_modalities)}->{'+'.join(spec.output_modalities)}",
        "input_modalities": spec.input_modalities,
        "output_modalities": spec.output_modalities,
        "tokenizer": None,
        "instruct_type": None,
    }


def _cheapest(model: Model) -> Endpoint:
    return min(model.endpoints, key=lambda ep: ep.price.prompt + ep.price.completion)


def model_body(model: Model) -> dict[str, Any]:
    top = _cheapest(model)
    parameters = sorted(frozenset().union(*(ep.supported_parameters for ep in model.endpoints)))
    return {
        "id": model.id,
        "object": "model",
        "owned_by": model.id.split("/", 1)[0],
        "canonical_slug": model.id,
        "name": model.spec.name,
        "created": _created(model),
        "description": model.spec.description,
        "context_length": model.spec.context_length,
        "architecture": _architecture(model),
        "pricing": pricing_body(top.price),
        "top_provider": {
            "context_length": top.context_length,
            "max_completion_tokens": top.max_output,
            "is_moderated": False,
        },
        "per_request_limits": None,
        "supported_parameters": parameters,
        "aliases": model.spec.aliases,
    }


def endpoint_body(endpoint: Endpoint, stats: EndpointStats | None = None) -> dict[str, Any]:
    provider = endpoint.provider
    return {
        "name": f"{provider.display_name} | {endpoint.upstream_model}",
        "provider_name": provider.display_name,
        "tag": provider.id,
        "context_length": endpoint.context_length,
        "max_completion_tokens": endpoint.max_output,
        "max_prompt_tokens": None,
        "pricing": pricing_body(endpoint.price),
        "quantization": endpoint.spec.quantization,
        "region": provider.region,
        "zdr": provider.zdr,
        "supported_parameters": sorted(endpoint.supported_parameters),
        "status": 0,
        # From the ledger (modelyard.stats); null means "no data in that window".
        "uptime_last_5m": stats.uptime["5m"] if stats else None,
        "uptime_last_30m": stats.uptime["30m"] if stats else None,
        "uptime_last_1d": stats.uptime["1d"] if stats else None,
        "latency_last_30m": stats.latency.as_dict() if stats and stats.latency else None,
        "throughput_last_30m": (stats.throughput.as_dict() if stats and stats.throughput else None),
    }


def _json(body: Any) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


class ModelsApi:
    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    async def list_models(self, request: Request) -> Response:
        models = self._gateway.catalog.models.values()
        return _json({"object": "list", "data": [model_body(m) for m in models]})

    def _model(self, request: Request) -> Model:
        author, slug = request.path_params["author"], request.path_params["slug"]
        model = self._gateway.catalog.find_by_path(author, slug)
        if model is None:
            raise NotFound(f"The model '{author}/{slug}' does not exist.", param="model")
        return model

    async def get_model(self, request: Request) -> Response:
        return _json(model_body(self._model(request)))

    async def list_endpoints(self, request: Request) -> Response:
        model = self._model(request)
        stats = await self._gateway.stats.endpoints(model.id)
        body = {
            "id": model.id,
            "name": model.spec.name,
            "created": _created(model),
            "description": model.spec.description,
            "architecture": _architecture(model),
            "endpoints": [endpoint_body(ep, stats.get(ep.id)) for ep in model.endpoints],
        }
        return _json({"data": body})
