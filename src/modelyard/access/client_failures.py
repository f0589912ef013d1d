"""How many unknown keys a client may try: a token bucket of failed authentications per client.

Every unknown key costs a database lookup, so a client that keeps guessing is refused with
429 (and a Retry-After) before it reaches the database. Clients are their IP address (an
IPv6 client its /64, what one host usually holds); the table of clients is an LRU of
bounded size, and a client whose allowance is full again is dropped from it.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from collections.abc import Callable

from starlette.types import Scope

DEFAULT_CLIENTS = 10_000


def client_of(scope: Scope) -> str | None:
    """The client address of an ASGI request (uvicorn puts X-Forwarded-For's there if trusted)."""
    client = scope.get("client")
    return str(client[0]) if client else None


def _client_key(address: str) -> str:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class ClientFailures:
    """`per_minute` failures per client, refilled evenly; 0 turns the limit off."""

    def __init__(
        self,
        per_minute: int,
        clock: Callable[[], float],
        *,
        max_clients: int = DEFAULT_CLIENTS,
    ) -> None:
        self._capacity = float(per_minute)
        self._rate = per_minute / 60.0
        self._clock = clock
        self._max_clients = max_clients
        # client → (tokens left, when they were counted)
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def retry_after(self, client: str | None) -> float | None:
        """Seconds until `client` may try an unknown key again; None when it may now."""
        if client is None or self._capacity <= 0:
            return None
        tokens = self._tokens(_client_key(client), self._clock())
        return None if tokens >= 1 else (1 - tokens) / self._rate

    def charge(self, client: str | None) -> None:
        """Count one failed (or about to be looked up) key against `client`."""
        self._add(client, -1.0)

    def refund(self, client: str | None) -> None:
        """The key looked up was a real one after all."""
        self._add(client, 1.0)

    def _tokens(self, key: str, now: float) -> float:
        entry = self._buckets.get(key)
        if entry is None:
            return self._capacity
        tokens, at = entry
        return min(self._capacity, tokens + (now - at) * self._rate)

    def _add(self, client: str | None, amount: float) -> None:
        if client is None or self._capacity <= 0:
            return
        key, now = _client_key(client), self._clock()
        tokens = self._tokens(key, now) + amount
        if tokens >= self._capacity:
            self._buckets.pop(key, None)
            return
        self._buckets[key] = (tokens, now)
        self._buckets.move_to_end(key)
        if len(self._buckets) > self._max_clients:
            self._buckets.popitem(last=False)
