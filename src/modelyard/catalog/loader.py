"""Load the built-in catalog, merge the operator's file over it, validate every entry.

Errors name the file, the entry (index and id) and the field, e.g.
`ops.toml: models[1] (id 'acme/x'): endpoints[0].price.prompt: Expected float >= 0.0`.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from modelyard.catalog.catalog import Catalog, build_catalog
from modelyard.catalog.kinds import ProviderKinds, builtin_kinds
from modelyard.catalog.parameters import EXTRA_PARAMETERS
from modelyard.catalog.spec import EndpointSpec, ModelSpec, ProviderSpec

BUILTIN_NAME = "built-in catalog.toml"
T = TypeVar("T", ModelSpec, ProviderSpec)
V = TypeVar("V")
# Fields an operator writes that the spec does not know belong to the provider's kind.
_PROVIDER_FIELDS = frozenset(ProviderSpec.__struct_fields__) - {"options"}
_ENDPOINT_FIELDS = frozenset(EndpointSpec.__struct_fields__) - {"options"}


class CatalogError(ValueError):
    """The catalog cannot be used; the message says where and why."""


@dataclass(frozen=True, slots=True)
class _KindFields:
    """A model's endpoints' kind-specific fields, checked once every provider is known."""

    where: str
    endpoints: list[dict[str, Any]]


def load_catalog(extra: Path | None = None, kinds: ProviderKinds | None = None) -> Catalog:
    """`kinds`: the provider kinds entries may name; None: the built-in adapters'."""
    kinds = builtin_kinds() if kinds is None else kinds
    builtin = files("modelyard.catalog").joinpath("catalog.toml").read_text(encoding="utf-8")
    providers, models, fields = _parse(BUILTIN_NAME, builtin, kinds)
    if extra is not None:
        try:
            text = extra.read_text(encoding="utf-8")
        except OSError as exc:
            raise CatalogError(f"{extra}: cannot read the catalog file: {exc.strerror}") from exc
        more_providers, more_models, more_fields = _parse(str(extra), text, kinds)
        providers = _merge(providers, more_providers)
        models = _merge(models, more_models)
        fields = _merge(fields, more_fields)
    _check_references(providers, models, extra, kinds)
    models = {
        model_id: _with_endpoint_options(model, fields[model_id], providers, kinds)
        for model_id, model in models.items()
    }
    return build_catalog(list(providers.values()), list(models.values()), kinds)


def known_parameters(kinds: ProviderKinds) -> frozenset[str]:
    """Every parameter name that `supported_parameters` in a catalog may list."""
    return frozenset().union(*(info.default_parameters for info in kinds.values())) | (
        EXTRA_PARAMETERS
    )


def _parse(
    source: str, text: str, kinds: ProviderKinds
) -> tuple[dict[str, ProviderSpec], dict[str, ModelSpec], dict[str, _KindFields]]:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{source}: not valid TOML: {exc}") from exc
    unknown = set(raw) - {"providers", "models"}
    if unknown:
        raise CatalogError(f"{source}: unknown top-level table(s): {', '.join(sorted(unknown))}")
    providers = {
        spec.id: _with_provider_options(where, spec, own, kinds)
        for where, spec, own in _entries(
            source, "providers", raw.get("providers", []), ProviderSpec
        )
    }
    models: dict[str, ModelSpec] = {}
    fields: dict[str, _KindFields] = {}
    for where, spec, own in _entries(source, "models", raw.get("models", []), ModelSpec):
        models[spec.id] = spec
        fields[spec.id] = _KindFields(where, own.get("endpoints", []))
    return providers, models, fields


def _entries(
    source: str, table: str, items: Any, kind: type[T]
) -> list[tuple[str, T, dict[str, Any]]]:
    """Each entry, where it is, and the fields its spec does not know (for its kind)."""
    if not isinstance(items, list):
        raise CatalogError(f"{source}: `{table}` must be an array of tables ([[{table}]])")
    out: list[tuple[str, T, dict[str, Any]]] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        where = f"{source}: {table}[{index}]"
        if isinstance(item, dict) and isinstance(item.get("id"), str):
            where += f" (id {item['id']!r})"
        known, own = _split(item, kind)
        try:
            entry = msgspec.convert(known, kind)
        except msgspec.ValidationError as exc:
            raise CatalogError(f"{where}: {_field_message(exc)}") from exc
        if entry.id in seen:
            raise CatalogError(f"{where}: duplicate id {entry.id!r} in the same file")
        seen.add(entry.id)
        out.append((where, entry, own))
    return out


def _split(item: Any, kind: type[ModelSpec | ProviderSpec]) -> tuple[Any, dict[str, Any]]:
    """The item without its kind's own fields, and those fields: for a provider a dict,
    for a model {"endpoints": [a dict per endpoint]}."""
    if not isinstance(item, dict):
        return item, {}
    if kind is ProviderSpec:
        return _split_fields(item, _PROVIDER_FIELDS)
    endpoints = item.get("endpoints")
    if not isinstance(endpoints, list):
        return item, {}
    pairs = [
        _split_fields(ep, _ENDPOINT_FIELDS) if isinstance(ep, dict) else (ep, {})
        for ep in endpoints
    ]
    known = {**item, "endpoints": [ep for ep, _ in pairs]}
    return known, {"endpoints": [own for _, own in pairs]}


def _split_fields(
    item: dict[str, Any], known: frozenset[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    return (
        {k: v for k, v in item.items() if k in known},
        {k: v for k, v in item.items() if k not in known},
    )


def _with_provider_options(
    where: str, spec: ProviderSpec, own: dict[str, Any], kinds: ProviderKinds
) -> ProviderSpec:
    info = kinds.get(spec.kind)
    if info is None:
        raise CatalogError(
            f"{where}: kind: {spec.kind!r} is not a provider kind"
            f" (known: {', '.join(sorted(kinds))})"
        )
    options = _options(where, spec.kind, info.provider_options, own)
    return msgspec.structs.replace(spec, options=options)


def _with_endpoint_options(
    model: ModelSpec, fields: _KindFields, providers: dict[str, ProviderSpec], kinds: ProviderKinds
) -> ModelSpec:
    endpoints = []
    for index, ep in enumerate(model.endpoints):
        kind = providers[ep.provider].kind
        own = fields.endpoints[index] if index < len(fields.endpoints) else {}
        where = f"{fields.where}: endpoints[{index}]"
        options = _options(where, kind, kinds[kind].endpoint_options, own)
        endpoints.append(msgspec.structs.replace(ep, options=options))
    return msgspec.structs.replace(model, endpoints=endpoints)


def _options(
    where: str, kind: str, struct: type[msgspec.Struct] | None, own: dict[str, Any]
) -> msgspec.Struct | None:
    if struct is None:
        if own:
            raise CatalogError(
                f"{where}: unknown field(s) {', '.join(sorted(own))}"
                f" (kind {kind!r} takes no fields of its own)"
            )
        return None
    try:
        return msgspec.convert(own, struct)
    except msgspec.ValidationError as exc:
        raise CatalogError(f"{where}: {_field_message(exc)} (kind {kind!r})") from exc


def _field_message(exc: msgspec.ValidationError) -> str:
    # msgspec says "Expected `int`, got `str` - at `$.endpoints[0].price`"; put the field first.
    text = str(exc)
    message, sep, path = text.rpartition(" - at `$")
    if not sep:
        return text
    return f"{path.rstrip('`').lstrip('.')}: {message}"


def _merge(base: dict[str, V], override: dict[str, V]) -> dict[str, V]:
    merged = dict(base)
    merged.update(override)
    return merged


def _check_references(
    providers: dict[str, ProviderSpec],
    models: dict[str, ModelSpec],
    extra: Path | None,
    kinds: ProviderKinds,
) -> None:
    source = str(extra) if extra else BUILTIN_NAME
    taken: dict[str, str] = {}
    known = known_parameters(kinds)
    for model in models.values():
        for index, ep in enumerate(model.endpoints):
            where = f"{source}: model {model.id!r}: endpoints[{index}]"
            if ep.provider not in providers:
                raise CatalogError(f"{where}: provider {ep.provider!r} is not defined")
            unknown = set(ep.supported_parameters or ()) - known
            if unknown:
                raise CatalogError(
                    f"{where}: supported_parameters: unknown {', '.join(sorted(unknown))}"
                )
        for name in (model.id, *model.aliases):
            owner = taken.setdefault(name, model.id)
            if owner != model.id:
                raise CatalogError(
                    f"{source}: model {model.id!r}: alias {name!r} is already used by {owner!r}"
                )
