"""Who is calling: the Bearer key of a request, checked against the keys we know."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from modelyard.errors import AuthError


@dataclass(frozen=True, slots=True)
class Caller:
    key_label: str
    is_admin: bool


class Authenticator:
    """Until app keys exist, the admin key is accepted on every endpoint."""

    def __init__(self, admin_key: str) -> None:
        self._admin_key = admin_key.encode()

    def authenticate(self, authorization: str | None) -> Caller:
        if not authorization:
            raise AuthError(
                "Missing API key. Send it as 'Authorization: Bearer <key>'.",
            )
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError("The Authorization header must be 'Bearer <key>'.")
        if hmac.compare_digest(token.strip().encode(), self._admin_key):
            return Caller(key_label="admin", is_admin=True)
        raise AuthError("Invalid API key.")
