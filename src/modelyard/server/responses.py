"""Answers the server writes itself, before or instead of the application: raw HTTP/1.1
bytes carrying the same OpenAI error JSON as every other error (`modelyard.errors`)."""

from __future__ import annotations

import http

from modelyard.errors import GatewayError


class HeadersTooLarge(GatewayError):
    status = 431
    error_type = "invalid_request_error"


def closing_response(error: GatewayError) -> bytes:
    """The whole response for `error`, announcing that the server closes the connection."""
    body = error.to_json()
    head = (
        f"HTTP/1.1 {error.status} {http.HTTPStatus(error.status).phrase}\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body
