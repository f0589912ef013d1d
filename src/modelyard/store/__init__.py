"""Persistence: apps, model resources, keys and the generations ledger."""

from modelyard.store.records import (
    ApiKey,
    App,
    Attempt,
    Generation,
    LimitReset,
    ModelResource,
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
    "UsageRow",
    "database_url",
]
