"""Load the built-in catalog, merge the operator's file over it, validate every entry.

Errors name the file, the entry (index and id) and the field, e.g.
`ops.toml: models[1] (id 'acme/x'): endpoints[0].price.prompt: Expected float >= 0.0`.
"""

from __future__ import annotations

import tomllib
from importlib.resources import files
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from modelyard.catalog.catalog import Catalog, build_catalog
from modelyard.catalog.parameters import KNOWN_PARAMETERS
from modelyard.catalog.spec import ModelSpec, ProviderSpec

BUILTIN_NAME = "built-in catalog.toml"
T = TypeVar("T", ModelSpec, ProviderSpec)


class CatalogError(ValueError):
    """The catalog cannot be used; the message says where and why."""


def load_catalog(extra: Path | None = None) -> Catalog:
    builtin = files("modelyard.catalog").joinpath("catalog.toml").read_text(encoding="utf-8")
    providers, models = _parse(BUILTIN_NAME, builtin)
    if extra is not None:
        try:
            text = extra.read_text(encoding="utf-8")
        except OSError as exc:
            raise CatalogError(f"{extra}: cannot read the catalog file: {exc.strerror}") from exc
        more_providers, more_models = _parse(str(extra), text)
        providers = _merge(providers, more_providers)
        models = _merge(models, more_models)
    _check_references(providers, models, extra)
    return build_catalog(list(providers.values()), list(models.values()))


def _parse(source: str, text: str) -> tuple[dict[str, ProviderSpec], dict[str, ModelSpec]]:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{source}: not valid TOML: {exc}") from exc
    unknown = set(raw) - {"providers", "models"}
    if unknown:
        raise CatalogError(f"{source}: unknown top-level table(s): {', '.join(sorted(unknown))}")
    providers = _entries(source, "providers", raw.get("providers", []), ProviderSpec)
    models = _entries(source, "models", raw.get("models", []), ModelSpec)
    return providers, models


def _entries(source: str, table: str, items: Any, kind: type[T]) -> dict[str, T]:
    if not isinstance(items, list):
        raise CatalogError(f"{source}: `{table}` must be an array of tables ([[{table}]])")
    out: dict[str, T] = {}
    for index, item in enumerate(items):
        where = f"{source}: {table}[{index}]"
        if isinstance(item, dict) and isinstance(item.get("id"), str):
            where += f" (id {item['id']!r})"
        try:
            entry = msgspec.convert(item, kind)
        except msgspec.ValidationError as exc:
            raise CatalogError(f"{where}: {_field_message(exc)}") from exc
        if entry.id in out:
            raise CatalogError(f"{where}: duplicate id {entry.id!r} in the same file")
        out[entry.id] = entry
    return out


def _field_message(exc: msgspec.ValidationError) -> str:
    # msgspec says "Expected `int`, got `str` - at `$.endpoints[0].price`"; put the field first.
    text = str(exc)
    message, sep, path = text.rpartition(" - at `$")
    if not sep:
        return text
    return f"{path.rstrip('`').lstrip('.')}: {message}"


def _merge(base: dict[str, T], override: dict[str, T]) -> dict[str, T]:
    merged = dict(base)
    merged.update(override)
    return merged


def _check_references(
    providers: dict[str, ProviderSpec], models: dict[str, ModelSpec], extra: Path | None
) -> None:
    source = str(extra) if extra else BUILTIN_NAME
    taken: dict[str, str] = {}
    for model in models.values():
        for index, ep in enumerate(model.endpoints):
            where = f"{source}: model {model.id!r}: endpoints[{index}]"
            if ep.provider not in providers:
                raise CatalogError(f"{where}: provider {ep.provider!r} is not defined")
            unknown = set(ep.supported_parameters or ()) - KNOWN_PARAMETERS
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
