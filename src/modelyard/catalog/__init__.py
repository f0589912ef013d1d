"""Models, providers and endpoints from the TOML catalog."""

from modelyard.catalog.catalog import Catalog, Endpoint, Model
from modelyard.catalog.kinds import ProviderKindInfo, ProviderKinds
from modelyard.catalog.loader import CatalogError, load_catalog

__all__ = [
    "Catalog",
    "CatalogError",
    "Endpoint",
    "Model",
    "ProviderKindInfo",
    "ProviderKinds",
    "load_catalog",
]
