"""Who a request acts for: an app and its key, or the operator. Identity, not HTTP: the
authenticator makes a `Caller` from a header, the request service and the ledger use it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from modelyard.store.records import ApiKey, App, LimitReset


@dataclass(frozen=True, slots=True)
class Caller:
    is_admin: bool
    app: App | None = None
    key: ApiKey | None = None
    # Catalog model ids this caller may use; None means any.
    allowed_models: frozenset[str] | None = None
    # The app's own upstream keys (BYOK), provider id → plain key.
    provider_keys: Mapping[str, str] = field(default_factory=dict)

    @property
    def app_id(self) -> str | None:
        return self.app.id if self.app else None

    @property
    def key_id(self) -> str | None:
        return self.key.id if self.key else None

    @property
    def zdr(self) -> bool:
        return bool(self.key and self.key.zdr)

    @property
    def limit_usd(self) -> Decimal | None:
        return self.key.limit_usd if self.key else None

    @property
    def limit_reset(self) -> LimitReset | None:
        return self.key.limit_reset if self.key else None


ADMIN = Caller(is_admin=True)
