"""Which API key an upstream call uses: the app's own (BYOK) if it set one, else the
operator's from the environment.

The app's keys ride in a context variable set by the chat handler for the duration of one
request, so adapters ask `api_key(spec)` and need no extra parameter.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType

from modelyard.catalog.spec import ProviderSpec

_NONE: Mapping[str, str] = MappingProxyType({})
_app_keys: ContextVar[Mapping[str, str]] = ContextVar("app_provider_keys", default=_NONE)


@contextmanager
def app_provider_keys(keys: Mapping[str, str]) -> Iterator[None]:
    """Use these provider id → key pairs for upstream calls made inside the block."""
    token = _app_keys.set(keys)
    try:
        yield
    finally:
        _app_keys.reset(token)


def api_key(spec: ProviderSpec) -> str | None:
    own = _app_keys.get().get(spec.id)
    if own is not None:
        return own
    return os.environ.get(spec.api_key_env) if spec.api_key_env else None


def is_byok(spec: ProviderSpec) -> bool:
    return spec.id in _app_keys.get()
