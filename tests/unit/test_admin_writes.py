"""Admin writes drop this process's cached callers: one path for every write route, so a
revoked key is refused at once, not after the cache's TTL."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace
from typing import Any, cast

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from modelyard.access.authenticator import Authenticator
from modelyard.api.admin import AdminApi
from modelyard.errors import AuthError
from modelyard.gateway import Gateway
from tests.unit.test_auth_cache import APP, KEY, Clock, CountingDirectory


class KeyStore(CountingDirectory):
    """The store's side of a key: found by the authenticator, revoked by the admin API."""

    async def get_app(self, name_or_id: str) -> Any:
        return APP if name_or_id in (APP.name, APP.id) else None

    async def revoke_key(self, app_id: str, key_id: str) -> Any:
        self.revoked = True
        return replace(KEY, revoked_at=APP.created_at)


def admin_api(auth: Authenticator, store: KeyStore) -> AdminApi:
    gateway = SimpleNamespace(auth=auth, store=store)
    return AdminApi(cast(Gateway, gateway), cast(Any, None), cast(Any, None))


async def test_a_revoked_key_is_refused_at_once_on_this_process() -> None:
    store = KeyStore()
    auth = Authenticator("admin", store, ttl_s=60, clock=Clock())  # the clock stands still
    assert (await auth.caller("Bearer my-good")).app_id == APP.id  # now cached for 60 s

    app = Starlette(routes=admin_api(auth, store).routes())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        answer = await client.delete(
            f"/apps/{APP.name}/keys/{KEY.id}", headers={"Authorization": "Bearer admin"}
        )
    assert answer.status_code == 200 and answer.json()["revoked"] is True
    with pytest.raises(AuthError, match="revoked"):
        await auth.caller("Bearer my-good")


def test_every_write_route_goes_through_the_invalidating_path() -> None:
    store = KeyStore()
    api = admin_api(Authenticator("admin", store), store)
    writes = [
        r
        for r in api.routes()
        if isinstance(r, Route) and r.methods and "GET" not in r.methods and "/call" not in r.path
    ]
    assert len(writes) == 8  # app; attach, destroy, detach; key create, revoke; BYOK set, unset
    for route in writes:
        assert route.endpoint.__code__.co_qualname == "AdminApi._write.<locals>.write", route.path
