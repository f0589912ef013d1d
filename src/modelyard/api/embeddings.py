"""POST /v1/embeddings: the OpenAI embeddings front door (OpenRouter's, Heroku's).

It parses the body (schema/embeddings.py), hands the request to the request service as a
call for an embedding model (so routing, fallback, limits, budgets, the ledger and cost
are chat's), and renders the vectors as floats or base64.
"""

from __future__ import annotations

import orjson
from starlette.types import Receive, Scope, Send

from modelyard.access.caller import Caller
from modelyard.api.chat import call_info
from modelyard.api.door import caller_and_body
from modelyard.api.http import ClientGone, send_error, send_json
from modelyard.errors import GatewayError
from modelyard.gateway import Gateway
from modelyard.schema.embeddings import EmbeddingsCall, embeddings_body, parse_embeddings_request

API = "embeddings"


class EmbeddingsApi:
    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gateway = self._gateway
        try:
            caller, body = await caller_and_body(gateway, scope, receive)
            parsed = parse_embeddings_request(body)
        except ClientGone:
            return
        except GatewayError as error:
            await send_error(send, error)
            return
        await self.serve(scope, send, caller, parsed)

    async def serve(self, scope: Scope, send: Send, caller: Caller, parsed: EmbeddingsCall) -> None:
        """Answer a parsed request for an authenticated caller (also the admin's models:call)."""
        info = call_info(scope, API, model_type="embedding")
        try:
            call = await self._gateway.service.begin(caller, parsed.chat, info)
        except GatewayError as error:
            await send_error(send, error)
            return
        async with call:
            try:
                route, result, cost = await call.embed(parsed.request)
            except GatewayError as error:
                await send_error(send, error)
                return
            body = embeddings_body(
                call.generation_id,
                route.model.id,
                route.endpoint.provider.id,
                result.vectors,
                result.usage,
                cost,
                parsed.request.encoding_format,
            )
            await send_json(send, 200, orjson.dumps(body), call.headers())
