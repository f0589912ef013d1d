"""GET /v1/generation?id= (one ledger row) and GET /v1/key (the calling key), as OpenRouter."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from modelyard.api.http import json_response
from modelyard.catalog.spec import ProviderSpec
from modelyard.errors import InvalidRequest, NotFound
from modelyard.gateway import Gateway
from modelyard.ledger.periods import period_end, period_start
from modelyard.store.records import Generation

# OpenRouter's data regions; a provider's own region ("us", "eu", "local", ...) maps
# onto them, and one it does not name (or none) is "global".
_DATA_REGIONS = {"us": "us", "eu": "europe", "europe": "europe"}


def data_region(provider: ProviderSpec | None) -> str:
    region = (provider.region or "").lower() if provider else ""
    return _DATA_REGIONS.get(region, "global")


def generation_body(
    row: Generation, app_name: str | None, provider: ProviderSpec | None
) -> dict[str, Any]:
    """One ledger row as OpenRouter's generation. What the ledger does not hold (moderation,
    web search, media counts, presets, upstream ids, user agent) is null, as the schema
    allows; our own fields (`app`, `x_title`, `status`) ride along."""
    return {
        "id": row.id,
        "model": row.model,
        # OpenRouter's kinds: chat, messages and responses all generate text.
        "api_type": "embeddings" if row.api == "embeddings" else "completions",
        "provider_name": row.provider,
        "total_cost": float(row.cost),
        "usage": float(row.cost),
        "upstream_inference_cost": None,
        "cache_discount": None,
        "tokens_prompt": row.tokens_prompt,
        "tokens_completion": row.tokens_completion,
        "native_tokens_prompt": row.tokens_prompt,
        "native_tokens_completion": row.tokens_completion,
        "native_tokens_cached": row.tokens_cached,
        "native_tokens_cache_write": row.tokens_cache_write,
        "native_tokens_reasoning": row.tokens_reasoning,
        "native_tokens_completion_images": None,
        "num_media_prompt": None,
        "num_media_completion": None,
        "num_input_audio_prompt": None,
        "num_search_results": None,
        "num_fetches": None,
        "latency": row.latency_ms,
        "generation_time": row.generation_time_ms,
        "moderation_latency": None,
        "streamed": row.streamed,
        "cancelled": row.cancelled,
        "finish_reason": row.finish_reason,
        "native_finish_reason": row.native_finish_reason,
        "is_byok": row.is_byok,
        # OpenRouter's app_id numbers an app attributed by HTTP-Referer; ours are named
        # ("app" below), so there is no number to give.
        "app_id": None,
        "app": app_name,
        "http_referer": row.http_referer,
        "origin": row.http_referer or "",
        "x_title": row.x_title,
        "external_user": None,
        "user_agent": None,
        "upstream_id": None,
        "preset_id": None,
        "router": None,
        "service_tier": None,
        "web_search_engine": None,
        "workspace_id": None,
        "data_region": data_region(provider),
        "provider_responses": [
            {"provider_name": a.provider, "status": a.status, "latency": a.duration_ms}
            for a in row.attempts
        ],
        "status": row.status,
        "created_at": row.created_at.isoformat(),
    }


def _remaining(limit: Decimal | None, spent: Decimal) -> float | None:
    if limit is None:
        return None
    left: Decimal = limit - spent
    return float(left) if left > 0 else 0.0


def rate_limit_body(rpm: int | None, tpm: int | None) -> dict[str, Any]:
    """OpenRouter's (deprecated) requests per interval, -1 for none; rpm/tpm are ours."""
    note = "Requests per minute for this key" + (f"; also {tpm} tokens per minute." if tpm else ".")
    if rpm is None:
        note = "No request limit for this key" + (f"; {tpm} tokens per minute." if tpm else ".")
    return {
        "requests": rpm if rpm is not None else -1,
        "interval": "1m",
        "note": note,
        "rpm": rpm,
        "tpm": tpm,
    }


class AccountApi:
    def __init__(self, gateway: Gateway) -> None:
        self._gw = gateway

    async def generation(self, request: Request) -> Response:
        authorization = request.headers.get("authorization")
        gw = self._gw
        is_admin = gw.auth.is_admin(authorization)
        client = request.client.host if request.client else None
        caller = None if is_admin else await gw.auth.caller(authorization, client=client)
        gen_id = request.query_params.get("id", "")
        if not gen_id:
            raise InvalidRequest("Missing required query parameter: 'id'.", param="id")
        row = gw.ledger.pending(gen_id) or await gw.store.get_generation(gen_id)
        # A row made with another key reads as absent, so ids cannot be probed.
        if row is None or (caller is not None and row.key_id != caller.key_id):
            raise NotFound(f"No generation with id {gen_id!r}.", param="id")
        app = await gw.store.get_app(row.app_id) if row.app_id else None
        provider = gw.catalog.providers.get(row.provider) if row.provider else None
        return json_response({"data": generation_body(row, app.name if app else None, provider)})

    async def key(self, request: Request) -> Response:
        gw = self._gw
        client = request.client.host if request.client else None
        caller = await gw.auth.caller(request.headers.get("authorization"), client=client)
        if caller.key is None or caller.app is None:
            raise InvalidRequest("GET /v1/key describes an app key; the admin key has none.")
        key = caller.key
        budget = gw.budget
        # Rows not yet written by the ledger writer count too; the limit's own period
        # reads what the spend limit itself goes by.
        spend = {
            "total": await budget.key_spend(key.id),
            "daily": await budget.key_spend(key.id, period_start("daily")),
            "weekly": await budget.key_spend(key.id, period_start("weekly")),
            "monthly": await budget.key_spend(key.id, period_start("monthly")),
        }
        if key.limit_usd is not None:
            spend[key.limit_reset or "total"] = await budget.limit_spend(key)
        # BYOK rows are billed at the catalog's prices and count toward the limit like any
        # other; OpenRouter reports them apart (`byok_usage*`), so `usage*` leaves them out.
        byok = await gw.stats.key_byok_spend(
            key.id,
            {
                "total": None,
                "daily": period_start("daily"),
                "weekly": period_start("weekly"),
                "monthly": period_start("monthly"),
            },
        )
        usage = {name: max(spend[name] - byok[name], Decimal(0)) for name in byok}
        in_period = spend[key.limit_reset or "total"]
        model = gw.catalog.find(next(iter(caller.allowed_models or ()), ""))
        rpm = key.rpm or (model.spec.rpm if model else None)
        tpm = key.tpm or (model.spec.tpm if model else None)
        body: dict[str, Any] = {
            "label": key.label or key.prefix,
            "app": caller.app.name,
            "limit": float(key.limit_usd) if key.limit_usd is not None else None,
            "limit_remaining": _remaining(key.limit_usd, in_period),
            "limit_reset": key.limit_reset,
            "limit_resets_at": (
                period_end(key.limit_reset).isoformat() if key.limit_reset else None
            ),
            "include_byok_in_limit": True,
            "usage": float(usage["total"]),
            "usage_daily": float(usage["daily"]),
            "usage_weekly": float(usage["weekly"]),
            "usage_monthly": float(usage["monthly"]),
            "byok_usage": float(byok["total"]),
            "byok_usage_daily": float(byok["daily"]),
            "byok_usage_weekly": float(byok["weekly"]),
            "byok_usage_monthly": float(byok["monthly"]),
            "is_free_tier": False,
            "is_management_key": False,
            "is_provisioning_key": False,
            "is_zdr": key.zdr,
            # No region policy on keys: any provider's region may serve them.
            "allowed_data_regions": ["global"],
            # No `:free` model variants here, so no free-model quota: -1, as OpenRouter's
            # rate_limit says "none".
            "free_model_daily_requests": {"limit": -1, "remaining": -1, "used": -1},
            "creator_user_id": None,
            "organization_id": None,
            "workspace_id": None,
            "rate_limit": rate_limit_body(rpm, tpm),
        }
        return json_response({"data": body})
