"""The admin's browser session: the admin key in a Secure, HttpOnly, SameSite=Strict cookie.

Holding the key itself (not a server-side session id) keeps every worker and replica able to
check it, and revoking is rotating the admin key.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from modelyard.errors import AuthError
from modelyard.gateway import Gateway

COOKIE = "modelyard_admin"
MAX_AGE_S = 12 * 3600


def is_admin(gateway: Gateway, request: Request) -> bool:
    key = request.cookies.get(COOKIE)
    if not key:
        return False
    try:
        return gateway.auth.is_admin(f"Bearer {key}")
    except AuthError:
        return False


def key_is_admin(gateway: Gateway, key: str) -> bool:
    try:
        return bool(key.strip()) and gateway.auth.is_admin(f"Bearer {key.strip()}")
    except AuthError:
        return False


def remember(response: Response, key: str) -> None:
    response.set_cookie(
        COOKIE,
        key.strip(),
        max_age=MAX_AGE_S,
        path="/",
        secure=True,
        httponly=True,
        samesite="strict",
    )


def forget(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="strict")
