"""What the catalog knows about a provider kind, as each adapter declares it.

The catalog never names a kind: an adapter module (built-in or a plug-in's) declares a
`ProviderKindInfo` without importing anything heavy, the registry collects them, and the
loader validates entries against them: the kind itself, the kind's own fields on
`[[providers]]` and `[[models.endpoints]]`, and the default `supported_parameters`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import msgspec

from modelyard.catalog.spec import ProviderSpec


def _never(_spec: ProviderSpec) -> bool:
    return False


@dataclass(frozen=True, slots=True)
class ProviderKindInfo:
    kind: str
    # The parameters an endpoint of this kind accepts when it lists none.
    default_parameters: frozenset[str]
    # The kind's own fields on a [[providers]] entry and on an endpoint of that provider,
    # checked with forbid_unknown_fields; None: the kind takes no fields of its own.
    provider_options: type[msgspec.Struct] | None = None
    endpoint_options: type[msgspec.Struct] | None = None
    # Whether the provider reuses prompt prefixes with no request asking for it.
    implicit_caching: Callable[[ProviderSpec], bool] = _never


ProviderKinds = Mapping[str, ProviderKindInfo]


def builtin_kinds() -> ProviderKinds:
    """The built-in adapters' declarations (imported late: the adapters import the catalog)."""
    from modelyard.providers.registry import builtin_kinds as declared

    return declared()
