"""Persistence: apps, model resources, keys, the generations ledger and stored responses."""

from modelyard.store.records import (
    ApiKey,
    App,
    Attempt,
    Generation,
    LimitReset,
    ModelResource,
    StoredResponse,
    UsageRow,
)
from modelyard.store.store import Store, database_url

__all__ = [
    "ApiKey",
    "App",
    "Attempt",
    "Generation",
    "LimitReset",
    "ModelResource",
    "Store",
    "StoredResponse",
    "UsageRow",
    "database_url",
]
