"""The admin's browser session: a random id in a Secure, HttpOnly, SameSite=Strict cookie.

The session lives in the database (store/admin_sessions.py), so every worker and replica
checks the same one, it ends after `admin_session_ttl_s`, and signing out deletes it: a
copy of the old cookie opens nothing. Each session carries a CSRF token that every
state-changing form of the pages posts back.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from starlette.requests import Request
from starlette.responses import Response

from modelyard.errors import AuthError
from modelyard.gateway import Gateway
from modelyard.store.admin_sessions import AdminSessionTable

COOKIE = "modelyard_admin"
CSRF_FIELD = "csrf_token"


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class AdminSession:
    id: str
    csrf_token: str

    def accepts(self, submitted: str | None) -> bool:
        """Whether a form posted this session's CSRF token."""
        return bool(submitted) and hmac.compare_digest(
            self.csrf_token.encode(), (submitted or "").encode()
        )


class AdminSessions:
    def __init__(self, gateway: Gateway) -> None:
        self._gw = gateway

    def _table(self) -> AdminSessionTable:
        return AdminSessionTable(self._gw.store.engine)

    def key_is_admin(self, key: str) -> bool:
        try:
            return bool(key.strip()) and self._gw.auth.is_admin(f"Bearer {key.strip()}")
        except AuthError:
            return False

    async def current(self, request: Request) -> AdminSession | None:
        """The live session this request's cookie names, if any."""
        session_id = request.cookies.get(COOKIE)
        if not session_id:
            return None
        row = await self._table().find(
            _sha256(session_id), _sha256(self._gw.admin_key), datetime.now(UTC)
        )
        return None if row is None else AdminSession(session_id, row.csrf_token)

    async def open(self, response: Response) -> None:
        """Start a session (the caller checked the admin key) and set its cookie."""
        ttl_s = self._gw.settings.admin_session_ttl_s
        session_id = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        await self._table().insert(
            _sha256(session_id),
            secrets.token_urlsafe(32),
            _sha256(self._gw.admin_key),
            now,
            now + timedelta(seconds=ttl_s),
        )
        response.set_cookie(
            COOKIE,
            session_id,
            max_age=int(ttl_s),
            path="/",
            secure=True,
            httponly=True,
            samesite="strict",
        )

    async def close(self, session: AdminSession, response: Response) -> None:
        """End the session everywhere and drop the browser's cookie."""
        await self._table().delete(_sha256(session.id))
        response.delete_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="strict")
