"""GET /v1/generation?id= (one ledger row) and GET /v1/key (the calling key), as OpenRouter."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from modelyard.errors import InvalidRequest, NotFound
from modelyard.gateway import Gateway
from modelyard.ledger.periods import period_end, period_start
from modelyard.store.records import Generation


def _json(body: Any) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


def generation_body(row: Generation, app_name: str | None) -> dict[str, Any]:
    return {
        "id": row.id,
        "model": row.model,
        "provider_name": row.provider,
        "total_cost": float(row.cost),
        "tokens_prompt": row.tokens_prompt,
        "tokens_completion": row.tokens_completion,
        "native_tokens_prompt": row.tokens_prompt,
        "native_tokens_completion": row.tokens_completion,
        "native_tokens_cached": row.tokens_cached,
        "native_tokens_cache_write": row.tokens_cache_write,
        "native_tokens_reasoning": row.tokens_reasoning,
        "latency": row.latency_ms,
        "generation_time": row.generation_time_ms,
        "streamed": row.streamed,
        "cancelled": row.cancelled,
        "finish_reason": row.finish_reason,
        "native_finish_reason": row.native_finish_reason,
        "is_byok": row.is_byok,
        "app": app_name,
        "app_id": row.app_id,
        "http_referer": row.http_referer,
        "x_title": row.x_title,
        "status": row.status,
        "created_at": row.created_at.isoformat(),
    }


def _remaining(limit: Decimal | None, spent: Decimal) -> float | None:
    if limit is None:
        return None
    left: Decimal = limit - spent
    return float(left) if left > 0 else 0.0


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
        return _json({"data": generation_body(row, app.name if app else None)})

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
        usage, daily, weekly, monthly = spend.values()
        in_period = spend[key.limit_reset or "total"]
        model = gw.catalog.find(next(iter(caller.allowed_models or ()), ""))
        rate_limit = {
            "rpm": key.rpm or (model.spec.rpm if model else None),
            "tpm": key.tpm or (model.spec.tpm if model else None),
        }
        return _json(
            {
                "data": {
                    "label": key.label or key.prefix,
                    "app": caller.app.name,
                    "limit": float(key.limit_usd) if key.limit_usd is not None else None,
                    "limit_remaining": _remaining(key.limit_usd, in_period),
                    "limit_reset": key.limit_reset,
                    "limit_resets_at": (
                        period_end(key.limit_reset).isoformat() if key.limit_reset else None
                    ),
                    "usage": float(usage),
                    "usage_daily": float(daily),
                    "usage_weekly": float(weekly),
                    "usage_monthly": float(monthly),
                    "is_zdr": key.zdr,
                    "rate_limit": rate_limit,
                }
            }
        )
