"""The resolved catalog: models, their endpoints and providers, looked up by id or alias."""

from __future__ import annotations

from dataclasses import dataclass, field

from modelyard.catalog.kinds import ProviderKinds, builtin_kinds
from modelyard.catalog.spec import EndpointSpec, ModelSpec, Price, ProviderSpec


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One provider serving one model: what routing chooses between."""

    model: ModelSpec
    provider: ProviderSpec
    spec: EndpointSpec
    context_length: int
    max_output: int
    supported_parameters: frozenset[str]
    # The provider reuses prompt prefixes with no request asking (its kind says when).
    implicit_caching: bool = False

    @property
    def id(self) -> str:
        return f"{self.provider.id}/{self.model.id}"

    @property
    def price(self) -> Price:
        return self.spec.price

    @property
    def upstream_model(self) -> str:
        return self.spec.upstream_model


@dataclass(frozen=True, slots=True)
class Model:
    spec: ModelSpec
    endpoints: tuple[Endpoint, ...]

    @property
    def id(self) -> str:
        return self.spec.id


@dataclass
class Catalog:
    providers: dict[str, ProviderSpec]
    models: dict[str, Model]
    _by_name: dict[str, Model] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for model in self.models.values():
            self._by_name[model.id] = model
            for alias in model.spec.aliases:
                self._by_name.setdefault(alias, model)

    def find(self, name: str) -> Model | None:
        """A model by its id or one of its aliases."""
        return self._by_name.get(name)

    def find_by_path(self, author: str, slug: str) -> Model | None:
        return self.models.get(f"{author}/{slug}")


def build_catalog(
    providers: list[ProviderSpec], models: list[ModelSpec], kinds: ProviderKinds | None = None
) -> Catalog:
    """`kinds`: what each provider kind declares; None: the built-in adapters'."""
    kinds = builtin_kinds() if kinds is None else kinds
    by_id = {p.id: p for p in providers}
    resolved: dict[str, Model] = {}
    for spec in models:
        endpoints = []
        for ep in spec.endpoints:
            provider = by_id[ep.provider]
            info = kinds[provider.kind]
            context = ep.context_length or spec.context_length
            endpoints.append(
                Endpoint(
                    model=spec,
                    provider=provider,
                    spec=ep,
                    context_length=context,
                    max_output=ep.max_output or spec.max_output or context,
                    supported_parameters=(
                        frozenset(ep.supported_parameters)
                        if ep.supported_parameters is not None
                        else info.default_parameters
                    ),
                    implicit_caching=info.implicit_caching(provider),
                )
            )
        resolved[spec.id] = Model(spec=spec, endpoints=tuple(endpoints))
    return Catalog(providers=by_id, models=resolved)
