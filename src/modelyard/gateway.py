"""The gateway's long-lived objects, made once at start-up and shared by the endpoints."""

from __future__ import annotations

from dataclasses import dataclass

from modelyard.api.auth import Authenticator
from modelyard.catalog import Catalog, load_catalog
from modelyard.config import Settings, ensure_admin_key
from modelyard.providers.registry import ProviderContext, ProviderRegistry, builtin_registry
from modelyard.routing.planner import Planner


@dataclass
class Gateway:
    settings: Settings
    catalog: Catalog
    providers: ProviderRegistry
    planner: Planner
    auth: Authenticator
    admin_key: str

    @classmethod
    def create(cls, settings: Settings, providers: ProviderRegistry | None = None) -> Gateway:
        catalog = load_catalog(settings.catalog_file)
        registry = providers or builtin_registry()
        admin_key = ensure_admin_key(settings)
        return cls(
            settings=settings,
            catalog=catalog,
            providers=registry,
            planner=Planner(catalog, registry),
            auth=Authenticator(admin_key),
            admin_key=admin_key,
        )

    async def start(self) -> None:
        context = ProviderContext(
            catalog=self.catalog,
            data_dir=self.settings.data_dir,
            show_progress=self.settings.show_progress,
        )
        await self.providers.start(context)

    async def close(self) -> None:
        await self.providers.close()
