"""Conversions between records and table rows (plain dicts in, `Row` mappings out)."""

from __future__ import annotations

from typing import Any, cast

import orjson
from sqlalchemy import RowMapping

from modelyard.store.records import (
    ApiKey,
    App,
    Attempt,
    Generation,
    LimitReset,
    ModelResource,
    StoredResponse,
)


def app_from_row(row: RowMapping) -> App:
    return App(id=row["id"], name=row["name"], created_at=row["created_at"])


def resource_from_row(row: RowMapping) -> ModelResource:
    return ModelResource(
        id=row["id"],
        app_id=row["app_id"],
        model_id=row["model_id"],
        alias=row["alias"],
        key_id=row["key_id"],
        created_at=row["created_at"],
    )


def key_to_row(key: ApiKey, key_hash: str) -> dict[str, Any]:
    return {
        "id": key.id,
        "app_id": key.app_id,
        "label": key.label,
        "key_hash": key_hash,
        "prefix": key.prefix,
        "created_at": key.created_at,
        "revoked_at": key.revoked_at,
        "allowed_models": None if key.allowed_models is None else list(key.allowed_models),
        "limit_usd": key.limit_usd,
        "limit_reset": key.limit_reset,
        "rpm": key.rpm,
        "tpm": key.tpm,
        "zdr": key.zdr,
    }


def key_from_row(row: RowMapping) -> ApiKey:
    allowed = row["allowed_models"]
    return ApiKey(
        id=row["id"],
        app_id=row["app_id"],
        label=row["label"],
        prefix=row["prefix"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
        allowed_models=None if allowed is None else tuple(allowed),
        limit_usd=row["limit_usd"],
        limit_reset=cast(LimitReset | None, row["limit_reset"]),
        rpm=row["rpm"],
        tpm=row["tpm"],
        zdr=bool(row["zdr"]),
    )


def generation_to_row(g: Generation) -> dict[str, Any]:
    return {
        "id": g.id,
        "created_at": g.created_at,
        "app_id": g.app_id,
        "key_id": g.key_id,
        "model": g.model,
        "provider": g.provider,
        "endpoint": g.endpoint,
        "status": g.status,
        "error": g.error,
        "tokens_prompt": g.tokens_prompt,
        "tokens_completion": g.tokens_completion,
        "tokens_cached": g.tokens_cached,
        "tokens_cache_write": g.tokens_cache_write,
        "tokens_reasoning": g.tokens_reasoning,
        "cost": g.cost,
        "latency_ms": g.latency_ms,
        "generation_time_ms": g.generation_time_ms,
        "streamed": g.streamed,
        "cancelled": g.cancelled,
        "finish_reason": g.finish_reason,
        "native_finish_reason": g.native_finish_reason,
        "is_byok": g.is_byok,
        "http_referer": g.http_referer,
        "x_title": g.x_title,
        "params": g.params,
        "attempts": [
            {
                "provider": a.provider,
                "status": a.status,
                "error": a.error,
                "duration_ms": a.duration_ms,
            }
            for a in g.attempts
        ],
        "prompt_text": g.prompt_text,
        "output_text": g.output_text,
        "api": g.api,
    }


def generation_from_row(row: RowMapping) -> Generation:
    return Generation(
        id=row["id"],
        created_at=row["created_at"],
        app_id=row["app_id"],
        key_id=row["key_id"],
        model=row["model"],
        provider=row["provider"],
        endpoint=row["endpoint"],
        status=row["status"],
        error=row["error"],
        tokens_prompt=row["tokens_prompt"],
        tokens_completion=row["tokens_completion"],
        tokens_cached=row["tokens_cached"],
        tokens_cache_write=row["tokens_cache_write"],
        tokens_reasoning=row["tokens_reasoning"],
        cost=row["cost"],
        latency_ms=row["latency_ms"],
        generation_time_ms=row["generation_time_ms"],
        streamed=bool(row["streamed"]),
        cancelled=bool(row["cancelled"]),
        finish_reason=row["finish_reason"],
        native_finish_reason=row["native_finish_reason"],
        is_byok=bool(row["is_byok"]),
        http_referer=row["http_referer"],
        x_title=row["x_title"],
        params=row["params"],
        attempts=[Attempt(**a) for a in row["attempts"]],
        prompt_text=row["prompt_text"],
        output_text=row["output_text"],
        api=row["api"],
    )


def response_to_row(item: StoredResponse) -> dict[str, Any]:
    """Raises TypeError (orjson.JSONEncodeError) for content JSON cannot hold."""
    return {
        "id": item.id,
        "app_id": item.app_id,
        "key_id": item.key_id,
        "created_at": item.created_at,
        "expires_at": item.expires_at,
        "model": item.model,
        "input_items": orjson.dumps(item.input_items).decode(),
        "output_items": orjson.dumps(item.output_items).decode(),
        "history_items": orjson.dumps(item.history_items).decode(),
        "response": orjson.dumps(item.response).decode(),
    }


def response_from_row(row: RowMapping) -> StoredResponse:
    return StoredResponse(
        id=row["id"],
        app_id=row["app_id"],
        key_id=row["key_id"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        model=row["model"],
        input_items=orjson.loads(row["input_items"]),
        output_items=orjson.loads(row["output_items"]),
        history_items=orjson.loads(row["history_items"]),
        response=orjson.loads(row["response"]),
    )
