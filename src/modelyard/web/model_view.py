"""What the model page shows: the catalog entry joined with its stats from the ledger."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from modelyard.catalog import Catalog, Endpoint, Model
from modelyard.stats import EndpointStats, ModelUsage, ParameterSpread, Stats
from modelyard.stats.hourly import HOURS, hour_labels
from modelyard.web.charts import bar_chart, uptime_strip
from modelyard.web.samples import LABELS, code_samples


@dataclass(frozen=True, slots=True)
class ProviderRow:
    endpoint: Endpoint
    stats: EndpointStats | None
    strip: Markup

    @property
    def latency_p50(self) -> float | None:
        return self.stats.latency.p50 if self.stats and self.stats.latency else None

    @property
    def throughput_p50(self) -> float | None:
        return self.stats.throughput.p50 if self.stats and self.stats.throughput else None

    @property
    def uptime(self) -> float | None:
        return self.stats.uptime["1d"] if self.stats else None


@dataclass(frozen=True, slots=True)
class Share:
    model_id: str
    name: str
    tokens: int
    share: float


def cheapest(model: Model) -> Endpoint:
    return min(model.endpoints, key=lambda ep: ep.price.prompt + ep.price.completion)


def is_embedding(model: Model) -> bool:
    return model.spec.type == "embedding"


def capability_tags(model: Model) -> list[str]:
    if is_embedding(model):
        return ["Embeddings"]
    params = frozenset().union(*(ep.supported_parameters for ep in model.endpoints))
    tags = []
    if "tools" in params:
        tags.append("Tool Use")
    if "image" in model.spec.input_modalities:
        tags.append("Vision")
    caching = model.spec.prompt_cache_min_tokens is not None or any(
        ep.price.cache_read is not None for ep in model.endpoints
    )
    if caching:
        tags.append("Caching")
    return tags


async def _versions(stats: Stats, catalog: Catalog, model: Model, own: int) -> list[Share]:
    """Token share among the models of the same author (its versions and siblings)."""
    author = model.id.split("/", 1)[0]
    family = [m for m in catalog.models.values() if m.id.split("/", 1)[0] == author]
    totals = await stats.total_tokens([m.id for m in family if m.id != model.id])
    totals[model.id] = own  # already summed for the chart
    whole = sum(totals.values())
    shares = [
        Share(m.id, m.spec.name, totals[m.id], totals[m.id] / whole if whole else 0.0)
        for m in family
    ]
    return sorted(shares, key=lambda s: (-s.tokens, s.model_id))


def _hourly(stats: EndpointStats | None) -> list[float | None]:
    return stats.hourly if stats else [None] * HOURS


async def model_context(
    stats: Stats, catalog: Catalog, model: Model, app_names: dict[str, str], base_url: str
) -> dict[str, Any]:
    by_endpoint = await stats.endpoints(model.id)
    usage: ModelUsage = await stats.usage(model.id, app_names)
    params: list[ParameterSpread] = await stats.parameters(model.id)
    labels = hour_labels(stats.now())
    providers = [
        ProviderRow(
            ep, by_endpoint.get(ep.id), uptime_strip(_hourly(by_endpoint.get(ep.id)), labels)
        )
        for ep in model.endpoints
    ]
    top = cheapest(model)
    total_tokens = sum(v for _, v in usage.tokens_per_day)
    samples = code_samples(base_url, model.id, embedding=is_embedding(model))
    return {
        "model": model,
        "embedding": is_embedding(model),
        "top": top,
        "max_output": model.spec.max_output or top.max_output,
        "tags": capability_tags(model),
        "providers": providers,
        "usage": usage,
        "total_tokens": total_tokens,
        "tokens_chart": bar_chart(usage.tokens_per_day, "tokens", width=420, height=170),
        "versions": await _versions(stats, catalog, model, total_tokens),
        "parameters": params,
        "samples": samples,
        "sample_tabs": [(name, LABELS[name]) for name in samples],
    }
