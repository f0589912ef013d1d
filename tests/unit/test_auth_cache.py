"""The key cache: one store lookup per key per expiry, however many requests arrive."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from modelyard.api.auth import Authenticator
from modelyard.errors import AuthError
from modelyard.store.records import ApiKey, App

APP = App(id="app_1", name="shop", created_at=datetime.now(UTC))
KEY = ApiKey(id="key_1", app_id="app_1", label="", prefix="my-", created_at=APP.created_at)


class CountingDirectory:
    def __init__(self) -> None:
        self.lookups = 0
        self.revoked = False

    async def key_by_plain(self, plain: str) -> tuple[ApiKey, App] | None:
        self.lookups += 1
        await asyncio.sleep(0.01)  # a database round trip
        if plain != "my-good":
            return None
        key = replace(KEY, revoked_at=APP.created_at) if self.revoked else KEY
        return key, APP

    async def app_model_ids(self, app_id: str) -> frozenset[str]:
        return frozenset({"m/x"})

    async def app_provider_keys(self, app_id: str) -> dict[str, str]:
        return {}


async def test_an_expired_entry_is_reloaded_once_while_requests_keep_flowing() -> None:
    directory = CountingDirectory()
    auth = Authenticator("admin", directory, ttl_s=0.05)
    callers = await asyncio.gather(*(auth.caller("Bearer my-good") for _ in range(50)))
    assert {c.app_id for c in callers} == {"app_1"}
    assert directory.lookups == 1  # concurrent first lookups share one query
    await asyncio.sleep(0.06)
    await asyncio.gather(*(auth.caller("Bearer my-good") for _ in range(50)))
    await asyncio.sleep(0.02)
    assert directory.lookups == 2
    # The reload saw the revocation: the next request is refused.
    directory.revoked = True
    await asyncio.sleep(0.06)
    await auth.caller("Bearer my-good")  # served from the stale entry, reload started
    await asyncio.sleep(0.02)
    with pytest.raises(AuthError, match="revoked"):
        await auth.caller("Bearer my-good")


async def test_unknown_keys_are_refused() -> None:
    auth = Authenticator("admin", CountingDirectory())
    with pytest.raises(AuthError, match="Invalid API key"):
        await auth.caller("Bearer my-bad")
