"""The key cache: one store lookup per key per expiry, however many requests arrive; unknown
keys remembered in a bounded LRU; a client guessing keys stopped before the database."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from modelyard.access.authenticator import Authenticator
from modelyard.access.client_failures import ClientFailures
from modelyard.errors import AuthError, RateLimited
from modelyard.store.records import ApiKey, App

APP = App(id="app_1", name="shop", created_at=datetime.now(UTC))
KEY = ApiKey(id="key_1", app_id="app_1", label="", prefix="my-", created_at=APP.created_at)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingDirectory:
    def __init__(self) -> None:
        self.lookups = 0
        self.revoked = False

    async def key_by_plain(self, plain: str) -> tuple[ApiKey, App] | None:
        self.lookups += 1
        await asyncio.sleep(0)  # a database round trip: other requests run meanwhile
        if plain != "my-good":
            return None
        key = replace(KEY, revoked_at=APP.created_at) if self.revoked else KEY
        return key, APP

    async def app_model_ids(self, app_id: str) -> frozenset[str]:
        return frozenset({"m/x"})

    async def app_provider_keys(self, app_id: str) -> dict[str, str]:
        return {}


async def settle() -> None:
    """Let background reloads finish (they take a few loop turns, no wall-clock time)."""
    for _ in range(10):
        await asyncio.sleep(0)


async def test_an_expired_entry_is_reloaded_once_while_requests_keep_flowing() -> None:
    directory, clock = CountingDirectory(), Clock()
    auth = Authenticator("admin", directory, ttl_s=5, clock=clock)
    callers = await asyncio.gather(*(auth.caller("Bearer my-good") for _ in range(50)))
    assert {c.app_id for c in callers} == {"app_1"}
    assert directory.lookups == 1  # concurrent first lookups share one query
    clock.now += 6
    await asyncio.gather(*(auth.caller("Bearer my-good") for _ in range(50)))
    await settle()
    assert directory.lookups == 2
    # The reload saw the revocation: the next request is refused.
    directory.revoked = True
    clock.now += 6
    await auth.caller("Bearer my-good")  # served from the stale entry, reload started
    await settle()
    with pytest.raises(AuthError, match="revoked"):
        await auth.caller("Bearer my-good")


async def test_unknown_keys_are_refused_and_remembered_for_the_ttl() -> None:
    directory, clock = CountingDirectory(), Clock()
    auth = Authenticator("admin", directory, clock=clock)
    for _ in range(3):
        with pytest.raises(AuthError, match="Invalid API key"):
            await auth.caller("Bearer my-bad")
    assert directory.lookups == 1
    clock.now += 6
    with pytest.raises(AuthError, match="Invalid API key"):
        await auth.caller("Bearer my-bad")
    assert directory.lookups == 2  # a key made on another replica is seen within the TTL


async def test_the_unknown_key_cache_never_exceeds_its_size() -> None:
    directory = CountingDirectory()
    auth = Authenticator("admin", directory, unknown_keys_cached=1000, clock=Clock())
    largest = 0
    for _ in range(100_000):
        with pytest.raises(AuthError):
            await auth.caller(f"Bearer {secrets.token_hex(16)}")
        largest = max(largest, auth.unknown_keys_cached)
    assert largest == 1000
    assert directory.lookups == 100_000
    # The most recent unknown keys are still answered from the cache.
    assert await auth.caller("Bearer my-good")
    assert auth.unknown_keys_cached == 1000


async def test_a_client_out_of_failures_gets_429_without_a_lookup() -> None:
    directory, clock = CountingDirectory(), Clock()
    auth = Authenticator("admin", directory, failures_per_minute=10, clock=clock)
    await auth.caller("Bearer my-good", client="10.0.0.1")  # a known key, cached
    for n in range(10):
        with pytest.raises(AuthError):
            await auth.caller(f"Bearer bad-{n}", client="10.0.0.1")
    lookups = directory.lookups
    with pytest.raises(RateLimited) as limited:
        await auth.caller("Bearer bad-x", client="10.0.0.1")
    assert directory.lookups == lookups
    assert limited.value.status == 429
    assert limited.value.headers["Retry-After"] == "6"  # one failure back every 6 s
    # A key it already holds keeps working for it; other clients are not affected.
    assert (await auth.caller("Bearer my-good", client="10.0.0.1")).app_id == "app_1"
    with pytest.raises(AuthError, match="Invalid API key"):
        await auth.caller("Bearer bad-y", client="10.0.0.2")
    # Refilled evenly: after 6 s one more try.
    clock.now += 6
    with pytest.raises(AuthError, match="Invalid API key"):
        await auth.caller("Bearer bad-z", client="10.0.0.1")
    with pytest.raises(RateLimited):
        await auth.caller("Bearer bad-w", client="10.0.0.1")


async def test_concurrent_lookups_cannot_overdraw_the_allowance() -> None:
    directory = CountingDirectory()
    auth = Authenticator("admin", directory, failures_per_minute=5, clock=Clock())
    results = await asyncio.gather(
        *(auth.caller(f"Bearer bad-{n}", client="10.0.0.1") for n in range(50)),
        return_exceptions=True,
    )
    assert sum(isinstance(r, RateLimited) for r in results) == 45
    assert directory.lookups == 5


async def test_a_real_key_found_by_lookup_costs_no_allowance() -> None:
    directory = CountingDirectory()
    auth = Authenticator("admin", directory, failures_per_minute=1, clock=Clock())
    assert await auth.caller("Bearer my-good", client="10.0.0.1")
    auth.forget()
    assert await auth.caller("Bearer my-good", client="10.0.0.1")
    with pytest.raises(AuthError, match="Invalid API key"):
        await auth.caller("Bearer bad", client="10.0.0.1")


def test_ipv6_clients_are_counted_per_64_and_the_table_is_bounded() -> None:
    clock = Clock()
    failures = ClientFailures(2, clock, max_clients=100)
    failures.charge("2001:db8:1:2::1")
    failures.charge("2001:db8:1:2::ffff")
    assert failures.retry_after("2001:db8:1:2:abcd::9") is not None
    assert failures.retry_after("2001:db8:1:3::1") is None
    failures.charge("::ffff:10.0.0.7")  # an IPv4-mapped peer is its IPv4 address
    failures.charge("10.0.0.7")
    assert failures.retry_after("10.0.0.7") is not None
    for n in range(10_000):
        failures.charge(f"10.1.{n // 256}.{n % 256}")
    assert len(failures) == 100
    clock.now += 120  # everyone's allowance is full again
    assert failures.retry_after("10.0.0.7") is None


async def test_no_limit_when_turned_off_or_without_a_client_address() -> None:
    directory = CountingDirectory()
    off = Authenticator("admin", directory, failures_per_minute=0, clock=Clock())
    unknown = Authenticator("admin", directory, failures_per_minute=1, clock=Clock())
    for n in range(100):
        for auth, client in ((off, "10.0.0.1"), (unknown, None)):
            with pytest.raises(AuthError, match="Invalid API key"):
                await auth.caller(f"Bearer bad-{n}", client=client)
