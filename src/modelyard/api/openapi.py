"""/openapi.json: the API description, with request schemas generated from the wire types."""

from __future__ import annotations

from typing import Any

import msgspec

from modelyard.schema.chat import ChatRequest

_REF = "#/components/schemas/{name}"


def _error_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": _REF.format(name="Error")}}},
    }


def openapi_document(base_url: str) -> dict[str, Any]:
    (chat_ref,), components = msgspec.json.schema_components([ChatRequest], ref_template=_REF)
    components["Error"] = {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message", "type"],
                "properties": {
                    "code": {"type": "integer"},
                    "message": {"type": "string"},
                    "type": {"type": "string"},
                    "param": {"type": ["string", "null"]},
                    "metadata": {"type": "object"},
                },
            }
        },
    }
    errors = {
        "400": _error_response("Invalid request; `param` names the parameter"),
        "401": _error_response("Missing or invalid API key"),
        "404": _error_response("Unknown model"),
        "413": _error_response("Request body too large"),
        "502": _error_response("The upstream provider failed"),
        "503": _error_response("No provider can serve the request"),
    }
    json_ok = {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}}
    model_params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in ("author", "slug")
    ]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "modelyard",
            "version": "0.1.0",
            "description": "An OpenAI-compatible model gateway. /api/v1 is an alias of /v1.",
        },
        "servers": [{"url": base_url}],
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "paths": {
            "/v1/chat/completions": {
                "post": {
                    "summary": "Create a chat completion (JSON, or SSE when stream is true)",
                    "security": [{"bearer": []}],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": chat_ref}},
                    },
                    "responses": {
                        "200": {
                            "description": "A chat.completion object, or an SSE stream of chunks",
                            "content": {
                                "application/json": {"schema": {"type": "object"}},
                                "text/event-stream": {"schema": {"type": "string"}},
                            },
                        },
                        **errors,
                    },
                }
            },
            "/v1/models": {"get": {"summary": "List models", "responses": {"200": json_ok}}},
            "/v1/models/{author}/{slug}": {
                "get": {
                    "summary": "One model",
                    "parameters": model_params,
                    "responses": {"200": json_ok, "404": errors["404"]},
                }
            },
            "/v1/models/{author}/{slug}/endpoints": {
                "get": {
                    "summary": "A model's provider endpoints with price, limits and stats",
                    "parameters": model_params,
                    "responses": {"200": json_ok, "404": errors["404"]},
                }
            },
            "/health": {"get": {"summary": "Liveness", "responses": {"200": json_ok}}},
        },
    }
