"""Which API key an upstream call uses, decided once per request.

`Credentials` holds the two sources: the app's own keys (BYOK, provider id → key, from its
`Caller`) and the operator's (`OperatorKeys`, read from the environment once at start-up).
The request service makes one per request; the planner asks it which endpoints have a key,
the ledger whether a call used the app's own, and the adapters, through `api_key(spec)`,
which key to send. The adapters get it from a context variable the service sets around
the upstream calls, so the provider seam needs no extra parameter.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import MappingProxyType

from modelyard.catalog.spec import ProviderSpec

_NONE: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class OperatorKeys:
    """The operator's upstream keys: each catalog provider's `api_key_env`, read once."""

    by_variable: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_environment(
        cls, providers: Iterable[ProviderSpec], environ: Mapping[str, str] = os.environ
    ) -> OperatorKeys:
        names = {p.api_key_env for p in providers if p.api_key_env}
        return cls({name: environ[name] for name in names if environ.get(name)})


@dataclass(frozen=True, slots=True)
class Credentials:
    operator: OperatorKeys = field(default_factory=OperatorKeys)
    own: Mapping[str, str] = field(default_factory=lambda: _NONE)  # the app's, provider id → key

    def key_for(self, spec: ProviderSpec) -> str | None:
        own = self.own.get(spec.id)
        if own is not None:
            return own
        return self.operator.by_variable.get(spec.api_key_env) if spec.api_key_env else None

    def is_own(self, spec: ProviderSpec) -> bool:
        return spec.id in self.own

    def missing(self, spec: ProviderSpec) -> str | None:
        """Why this provider cannot be called for lack of a key, or None."""
        if spec.api_key_env and self.key_for(spec) is None:
            return f"no API key: set {spec.api_key_env}"
        return None


_current: ContextVar[Credentials | None] = ContextVar("credentials", default=None)


@contextmanager
def using(credentials: Credentials) -> Iterator[None]:
    """Upstream calls made inside the block use these credentials."""
    token = _current.set(credentials)
    try:
        yield
    finally:
        _current.reset(token)


def api_key(spec: ProviderSpec) -> str | None:
    """The key for an upstream call of the current request (outside one, as when a tool
    drives an adapter itself: the operator's, from the environment)."""
    credentials = _current.get()
    if credentials is None:
        credentials = Credentials(OperatorKeys.from_environment([spec]))
    return credentials.key_for(spec)
