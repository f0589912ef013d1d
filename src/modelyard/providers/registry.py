"""Providers by catalog `kind`: the one place that knows which adapters exist.

Built-in adapters register through the same `register` call a plug-in would use: a kind's
declaration (what the catalog validates its entries against) and a factory for its
adapter. The rest of the gateway asks `get(kind)` and never branches on a provider's name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from modelyard.catalog import Catalog
from modelyard.catalog.kinds import ProviderKindInfo, ProviderKinds
from modelyard.providers.base import Provider


@dataclass(frozen=True)
class ProviderContext:
    catalog: Catalog
    data_dir: Path
    show_progress: bool = False
    # Open connections an HTTP adapter keeps to one upstream origin (host and port).
    upstream_max_connections: int = 100


ProviderFactory = Callable[[ProviderContext], Provider]


class ProviderRegistry:
    def __init__(self) -> None:
        self._kinds: dict[str, ProviderKindInfo] = {}
        self._factories: dict[str, ProviderFactory] = {}
        self._providers: dict[str, Provider] = {}

    def register(self, info: ProviderKindInfo, factory: ProviderFactory) -> None:
        self._kinds[info.kind] = info
        self._factories[info.kind] = factory

    async def start(self, context: ProviderContext) -> None:
        kinds_in_use = {p.kind for p in context.catalog.providers.values()}
        for kind, factory in self._factories.items():
            if kind in kinds_in_use:
                provider = factory(context)
                await provider.start()
                self._providers[kind] = provider

    async def close(self) -> None:
        for provider in self._providers.values():
            await provider.close()
        self._providers.clear()

    def get(self, kind: str) -> Provider | None:
        return self._providers.get(kind)

    def kinds(self) -> list[str]:
        return sorted(self._factories)

    def kinds_info(self) -> ProviderKinds:
        """What the catalog may name: the built-in kinds (the built-in catalog uses them,
        served here or not) and every registered one."""
        return {**builtin_kinds(), **self._kinds}


def builtin_kinds() -> dict[str, ProviderKindInfo]:
    """The built-in adapters' declarations; none of them imports llama.cpp."""
    from modelyard.providers.anthropic import ANTHROPIC_KIND
    from modelyard.providers.local.options import LOCAL_KIND
    from modelyard.providers.openai import OPENAI_KIND

    return {info.kind: info for info in (LOCAL_KIND, OPENAI_KIND, ANTHROPIC_KIND)}


def builtin_registry(*, load_local: bool = True) -> ProviderRegistry:
    """Every built-in adapter; `load_local=False` leaves kind "local" out, so no model is
    loaded (nor llama.cpp imported) and local endpoints are unavailable."""
    from modelyard.providers.anthropic import ANTHROPIC_KIND, AnthropicProvider
    from modelyard.providers.local.options import LOCAL_KIND
    from modelyard.providers.openai import OPENAI_KIND, OpenAIProvider

    registry = ProviderRegistry()
    if load_local:
        from modelyard.providers.local.provider import LocalProvider

        registry.register(
            LOCAL_KIND,
            lambda ctx: LocalProvider(ctx.catalog, ctx.data_dir, show_progress=ctx.show_progress),
        )
    registry.register(OPENAI_KIND, OpenAIProvider)
    registry.register(ANTHROPIC_KIND, AnthropicProvider)
    return registry
