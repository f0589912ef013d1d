"""POST /v1/responses, GET and DELETE /v1/responses/{id}: the OpenAI Responses front door.

It parses the Responses wire format into the internal request (schema/responses.py),
continues from a stored response when asked (`previous_response_id`: the stored turns go
before the new input), hands the request to the request service, and renders the answer
as a response object or as typed stream events (schema/responses_render.py). What it
answered is kept (`store`, the default) by the response archive, off the request path.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from modelyard.access.caller import Caller
from modelyard.api.chat import SSE_HEADERS, call_info
from modelyard.api.disconnect import cancel_on_disconnect
from modelyard.api.door import caller_and_body
from modelyard.api.http import (
    ClientGone,
    json_response,
    send_error,
    send_json,
)
from modelyard.errors import GatewayError, NotFound
from modelyard.gateway import Gateway
from modelyard.providers.base import Usage
from modelyard.schema.chat import ChatRequest
from modelyard.schema.image_urls import check_image_urls
from modelyard.schema.responses import ResponsesCall, parse_responses_request, with_history
from modelyard.schema.responses_render import (
    ResponsesStreamWriter,
    output_items,
    response_object,
    status_of,
)
from modelyard.service import Billed, GenerationCall
from modelyard.store.records import StoredResponse
from modelyard.store.response_ids import new_response_id

API = "responses"


class Responses:
    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gateway = self._gateway
        try:
            caller, body = await caller_and_body(gateway, scope, receive)
            parsed = parse_responses_request(body)
            turn = await self._turn(caller, parsed)
            await check_image_urls(turn.chat, gateway.image_urls)
            call = await gateway.service.begin(caller, turn.chat, call_info(scope, API))
        except ClientGone:
            return
        except GatewayError as error:
            await send_error(send, error)
            return
        respond = turn.stream if parsed.stream else turn.complete
        async with call:
            if await cancel_on_disconnect(receive, respond(call, send)):
                call.client_left()

    async def _turn(self, caller: Caller, parsed: ResponsesCall) -> _Turn:
        archive = self._gateway.responses
        history: list[dict[str, Any]] = []
        previous_id = parsed.previous_response_id
        if previous_id is not None:
            previous = await archive.get(caller.app_id, previous_id)
            if previous is None:
                raise NotFound(
                    f"Previous response with id '{previous_id}' not found.",
                    param="previous_response_id",
                )
            history = [*previous.history_items, *previous.input_items, *previous.output_items]
        chat = with_history(parsed, history) if history else parsed.chat
        keep = parsed.store and archive.enabled and not caller.zdr
        return _Turn(self._gateway, caller, parsed, chat, history, keep)

    # -- GET / DELETE /v1/responses/{id} ----------------------------------------------------
    async def retrieve(self, request: Request) -> Response:
        caller = await self._caller(request)
        stored = await self._gateway.responses.get(caller.app_id, request.path_params["id"])
        if stored is None:
            raise _not_found(request.path_params["id"])
        return json_response(stored.response)

    async def delete(self, request: Request) -> Response:
        caller = await self._caller(request)
        response_id = request.path_params["id"]
        if not await self._gateway.responses.delete(caller.app_id, response_id):
            raise _not_found(response_id)
        return json_response({"id": response_id, "object": "response", "deleted": True})

    async def _caller(self, request: Request) -> Caller:
        client = request.client
        return await self._gateway.auth.caller(
            request.headers.get("authorization"), client=client.host if client else None
        )


class _Turn:
    """One request's answer, rendered and kept."""

    def __init__(
        self,
        gateway: Gateway,
        caller: Caller,
        parsed: ResponsesCall,
        chat: ChatRequest,
        history: list[dict[str, Any]],
        keep: bool,
    ) -> None:
        self._gateway = gateway
        self._caller = caller
        self.parsed = parsed
        self.chat = chat
        self._history = history
        self._keep = keep
        self.response_id = new_response_id()
        self.created_at = int(time.time())

    async def complete(self, call: GenerationCall, send: Send) -> None:
        try:
            route, result, cost = await call.complete()
        except GatewayError as error:
            await send_error(send, error)
            return
        output = output_items(result, id_seed=self.response_id, call=self.parsed)
        body = self.response(route.model.id, output, result.finish_reason, result.usage, cost)
        self.save(route.model.id, output, body)
        await send_json(send, 200, orjson.dumps(body), call.headers())

    async def stream(self, call: GenerationCall, send: Send) -> None:
        try:
            answer = await call.stream()
        except GatewayError as error:
            await send_error(send, error)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [*SSE_HEADERS, *call.headers()],
            }
        )
        model = answer.route.model.id
        writer = ResponsesStreamWriter(self.response_id, self.created_at, model, self.parsed)

        async def body(chunk: bytes) -> None:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})

        await body(writer.start())
        await answer.relay(_EventRenderer(self, model, writer), body)
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    def response(
        self,
        model: str,
        output: list[dict[str, Any]],
        finish_reason: str,
        usage: Usage,
        cost: Decimal,
    ) -> dict[str, Any]:
        status, reason = status_of(finish_reason)
        return response_object(
            self.response_id,
            self.created_at,
            model,
            self.parsed,
            status=status,
            output=output,
            usage=usage,
            incomplete_reason=reason,
            cost=cost,
        )

    def save(self, model: str, output: list[dict[str, Any]], response: dict[str, Any]) -> None:
        if not self._keep:
            return
        caller, archive = self._caller, self._gateway.responses
        now = archive.now()
        archive.save(
            StoredResponse(
                id=self.response_id,
                app_id=caller.app_id,
                key_id=caller.key_id,
                created_at=now,
                expires_at=now + archive.retention,
                model=model,
                input_items=self.parsed.input_items,
                output_items=output,
                response=response,
                history_items=self._history,
            )
        )


class _EventRenderer:
    """A streamed answer as the Responses API's typed events; at its end, it is kept."""

    __slots__ = ("_model", "_turn", "_writer", "delta")

    def __init__(self, turn: _Turn, model: str, writer: ResponsesStreamWriter) -> None:
        self._turn = turn
        self._model = model
        self._writer = writer
        self.delta = writer.delta

    def finish(self, billed: Billed) -> bytes:
        ending = self._writer.finish(billed, billed.usage, cost=billed.cost)
        final = self._writer.final
        if final is not None:
            self._turn.save(self._model, final["output"], final)
        return ending

    def quiet(self) -> bytes:
        return self._writer.keepalive()

    def error(self, error: GatewayError) -> bytes:
        return self._writer.error(error)


def _not_found(response_id: str) -> NotFound:
    return NotFound(f"No response with id '{response_id}' was found.", param="response_id")
