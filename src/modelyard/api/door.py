"""What every front door does first: a POST, its caller, its body (size-capped)."""

from __future__ import annotations

from starlette.types import Receive, Scope

from modelyard.access.caller import Caller
from modelyard.api.http import header, read_body
from modelyard.errors import InvalidRequest
from modelyard.gateway import Gateway


async def caller_and_body(
    gateway: Gateway, scope: Scope, receive: Receive, authorization: str | None = None
) -> tuple[Caller, bytes]:
    """The authenticated caller and the request body; raises GatewayError (ClientGone when
    the client left before sending it). `authorization` defaults to the header of that
    name (the Messages door also takes x-api-key)."""
    if scope["method"] != "POST":
        raise InvalidRequest(f"Use POST for {scope['path']}.")
    client = scope.get("client")
    caller = await gateway.auth.caller(
        authorization if authorization is not None else header(scope, b"authorization"),
        client=client[0] if client else None,
    )
    return caller, await read_body(scope, receive, gateway.settings.max_body_bytes)
