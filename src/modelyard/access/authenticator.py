"""Who is calling: the Bearer key of a request, checked against the keys the store knows.

App keys are looked up by their SHA-256 through the store and cached here for `ttl_s`, so
the hot path touches the database about once per key per TTL. A revocation made through
this process drops the cache entry at once; other replicas see it within `ttl_s`.

Unknown keys are remembered too (so a retried bad key costs no query), in an LRU of
`unknown_keys_cached` entries: random keys cannot grow the process. Each lookup of a key
not in either cache is charged to the client (`ClientFailures`); a client out of
allowance gets 429 without a query, while keys already known keep working for it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

from modelyard.access.caller import ADMIN, Caller
from modelyard.access.client_failures import ClientFailures
from modelyard.errors import AuthError, RateLimited
from modelyard.store.records import ApiKey, App


class KeyDirectory(Protocol):
    """What the authenticator needs from the store."""

    async def key_by_plain(self, plain: str) -> tuple[ApiKey, App] | None: ...

    async def app_model_ids(self, app_id: str) -> frozenset[str]: ...

    async def app_provider_keys(self, app_id: str) -> dict[str, str]: ...


class Authenticator:
    def __init__(
        self,
        admin_key: str,
        directory: KeyDirectory,
        *,
        admin_can_infer: bool = False,
        ttl_s: float = 5.0,
        unknown_keys_cached: int = 10_000,
        failures_per_minute: int = 60,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._admin_key = admin_key.encode()
        self._directory = directory
        self._admin_can_infer = admin_can_infer
        self._ttl_s = ttl_s
        self._clock = clock
        # digest → (loaded at, caller): real keys, as many as the store holds.
        self._known: dict[str, tuple[float, Caller]] = {}
        # digest → loaded at: keys the store does not know, least recently used first.
        self._unknown: OrderedDict[str, float] = OrderedDict()
        self._unknown_limit = unknown_keys_cached
        self._failures = ClientFailures(failures_per_minute, clock)
        self._reloading: dict[str, asyncio.Task[Caller | None]] = {}

    @property
    def unknown_keys_cached(self) -> int:
        return len(self._unknown)

    @staticmethod
    def _token(authorization: str | None) -> str:
        if not authorization:
            raise AuthError("Missing API key. Send it as 'Authorization: Bearer <key>'.")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthError("The Authorization header must be 'Bearer <key>'.")
        return token

    def is_admin(self, authorization: str | None) -> bool:
        token = self._token(authorization)
        return hmac.compare_digest(token.encode(), self._admin_key)

    def require_admin(self, authorization: str | None) -> None:
        if not self.is_admin(authorization):
            raise AuthError("This endpoint needs the admin key.")

    async def caller(
        self, authorization: str | None, *, inference: bool = True, client: str | None = None
    ) -> Caller:
        """The caller behind a Bearer key; the admin key counts for inference only if allowed.

        `client` (the peer's address) is charged for keys that need a lookup; None: no limit.
        """
        if self.is_admin(authorization):
            if inference and not self._admin_can_infer:
                raise AuthError(
                    "The admin key is not an inference key. Create an app and attach a model "
                    "(modelyard apps:create, modelyard models:create) and use its key."
                )
            return ADMIN
        token = self._token(authorization)
        digest = hashlib.sha256(token.encode()).hexdigest()
        now = self._clock()
        known = self._known.get(digest)
        if known is not None:
            if now - known[0] >= self._ttl_s:
                # Stale: one background reload per key; meanwhile serve what we know, so an
                # expiry under load is not a stampede of identical queries.
                self._refresh(token, digest)
            return _admitted(known[1])
        wait = self._failures.retry_after(client)
        if wait is not None:
            raise RateLimited(
                "Too many requests with unknown API keys from this address; "
                f"retry in {math.ceil(wait)} s.",
                headers={"Retry-After": str(math.ceil(wait))},
            )
        self._failures.charge(client)
        unknown_at = self._unknown.get(digest)
        if unknown_at is not None and now - unknown_at < self._ttl_s:
            self._unknown.move_to_end(digest)
            raise AuthError("Invalid API key.")
        caller = await self._refresh(token, digest)
        if caller is None:
            raise AuthError("Invalid API key.")
        self._failures.refund(client)
        return _admitted(caller)

    def _refresh(self, token: str, digest: str) -> asyncio.Task[Caller | None]:
        task = self._reloading.get(digest)
        if task is None:
            task = asyncio.ensure_future(self._load_into_cache(token, digest))
            self._reloading[digest] = task
            task.add_done_callback(lambda _: self._reloading.pop(digest, None))
        return task

    async def _load_into_cache(self, token: str, digest: str) -> Caller | None:
        caller = await self._load(token)
        now = self._clock()
        if caller is not None:
            self._known[digest] = (now, caller)
            self._unknown.pop(digest, None)
            return caller
        self._known.pop(digest, None)
        self._unknown[digest] = now
        self._unknown.move_to_end(digest)
        while len(self._unknown) > self._unknown_limit:
            self._unknown.popitem(last=False)
        return None

    async def _load(self, token: str) -> Caller | None:
        found = await self._directory.key_by_plain(token)
        if found is None:
            return None
        key, app = found
        allowed = (
            frozenset(key.allowed_models)
            if key.allowed_models is not None
            else await self._directory.app_model_ids(app.id)
        )
        return Caller(
            is_admin=False,
            app=app,
            key=key,
            allowed_models=allowed,
            provider_keys=await self._directory.app_provider_keys(app.id),
        )

    def forget(self) -> None:
        """Drop cached callers (after a key or an app's models changed here)."""
        self._known.clear()
        self._unknown.clear()


def _admitted(caller: Caller) -> Caller:
    if caller.key is not None and caller.key.revoked_at is not None:
        raise AuthError("This API key has been revoked.")
    return caller
