"""Plan a request: resolve its model(s) and order the endpoints to try.

Checks that no endpoint could change (an image sent to a text-only model, `max_tokens`
above the model's limit) are the client's mistake: 4xx. Endpoints that cannot serve the
request now (no key configured, adapter missing) are dropped with a reason; if none is
left the answer is 503 naming, per endpoint, what excluded it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

import msgspec

from modelyard.catalog import Catalog, Endpoint, Model
from modelyard.errors import Forbidden, InvalidRequest, NoProviderAvailable, NotFound
from modelyard.providers.base import Provider
from modelyard.providers.credentials import Credentials
from modelyard.providers.registry import ProviderRegistry
from modelyard.routing.filters import NO_PREFERENCES, exclusion_reason, min_prompt_tokens
from modelyard.routing.health import HealthTracker
from modelyard.routing.ordering import order_endpoints
from modelyard.routing.sticky import StickySessions, caches_cheaply
from modelyard.schema.chat import ChatRequest, FilePart, ImagePart, UserMessage

# No keys of an app's own, none of the operator's: the default of a bare Planner.
NO_CREDENTIALS = Credentials()


@dataclass(frozen=True, slots=True)
class Route:
    model: Model
    endpoint: Endpoint
    provider: Provider


class Planner:
    def __init__(
        self,
        catalog: Catalog,
        registry: ProviderRegistry,
        health: HealthTracker | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._catalog = catalog
        self._registry = registry
        self.health = health or HealthTracker()
        self.sticky = StickySessions()
        self._rng = rng or random.Random()

    def resolve(self, name: str) -> Model:
        model = self._catalog.find(name)
        if model is None:
            raise NotFound(
                f"The model {name!r} does not exist. GET /v1/models lists the available models.",
                param="model",
            )
        return model

    def plan(
        self,
        request: ChatRequest,
        allowed_models: frozenset[str] | None = None,
        *,
        zdr_key: bool = False,
        credentials: Credentials = NO_CREDENTIALS,
        session: Callable[[], str] | None = None,
        model_type: str = "chat",
    ) -> list[Route]:
        """Routes to try in order: the model asked for, then each `models` fallback.

        `allowed_models` (None: any) is what the caller's key may use: the model asked for
        must be among them (403); fallbacks outside them are skipped. `session` gives the
        conversation's key, asked for only if an endpoint that caches prompts is in play.
        """
        names = request.model_names()
        models = [self.resolve(names[0])]
        _check_type(models[0], model_type)
        if allowed_models is not None and models[0].id not in allowed_models:
            raise Forbidden(
                f"This key is not allowed to use the model {models[0].id!r}. Attach the "
                "model to the app (modelyard models:create) or use that model's key.",
                param="model",
            )
        models += [
            m
            for n in names[1:]
            if (m := self._catalog.find(n)) is not None
            and (allowed_models is None or m.id in allowed_models)
            and m.spec.type == model_type
        ]
        if model_type == "chat":  # an embedding's inputs each fit alone: its adapter checks
            _check_request_fits(request, models[0])
        prefs = request.provider or NO_PREFERENCES
        routes: list[Route] = []
        excluded: dict[str, str] = {}
        for model in models:
            eligible: list[Endpoint] = []
            for endpoint in model.endpoints:
                reason = self._exclusion(endpoint, request, zdr_key, credentials)
                if reason is None:
                    eligible.append(endpoint)
                else:
                    excluded[f"{model.id} via {endpoint.provider.id}"] = reason
            ordered = order_endpoints(eligible, prefs, self.health, self._rng)
            if session is not None and not (prefs.order or prefs.sort):
                ordered = self._stick(ordered, session, model)
            for endpoint in ordered:
                provider = self._registry.get(endpoint.provider.kind)
                assert provider is not None  # checked by _exclusion
                routes.append(Route(model, endpoint, provider))
        if not routes:
            details = "; ".join(f"{where}: {why}" for where, why in excluded.items())
            raise NoProviderAvailable(
                f"No provider can serve {models[0].id} for this request. {details}",
                metadata={"excluded": excluded},
            )
        return routes

    def clamp_output(self, request: ChatRequest) -> ChatRequest:
        """The request with a max_tokens above its model's max output lowered to it (the
        Messages API's way; Chat Completions refuses it instead)."""
        limit = request.output_limit
        names = request.model_names()
        model = self._catalog.find(names[0]) if names else None
        if limit is None or model is None:
            return request  # plan() says what is wrong with it
        most = max(endpoint.max_output for endpoint in model.endpoints)
        if limit <= most:
            return request
        return msgspec.structs.replace(request, max_tokens=most, max_completion_tokens=None)

    def _stick(
        self, ordered: list[Endpoint], session: Callable[[], str], model: Model
    ) -> list[Endpoint]:
        """Put the endpoint holding this conversation's cache first, if it is eligible."""
        if not any(caches_cheaply(ep) for ep in ordered):
            return ordered  # no endpoint here is ever remembered
        sticky = self.sticky.endpoint_for(f"{session()}|{model.id}")
        first = next((ep for ep in ordered if ep.id == sticky), None)
        return ordered if first is None else [first, *(ep for ep in ordered if ep is not first)]

    def served(self, session: Callable[[], str] | None, route: Route) -> None:
        if session is not None and caches_cheaply(route.endpoint):
            self.sticky.remember(f"{session()}|{route.model.id}", route.endpoint)

    def _exclusion(
        self, endpoint: Endpoint, request: ChatRequest, zdr_key: bool, credentials: Credentials
    ) -> str | None:
        spec = endpoint.provider
        missing_key = credentials.missing(spec)
        if missing_key is not None:
            return missing_key
        provider = self._registry.get(spec.kind)
        if provider is None:
            return f"provider kind {spec.kind!r} is not enabled in this gateway"
        reason = exclusion_reason(endpoint, request, zdr_key=zdr_key)
        if reason is None:
            reason = provider.unavailable_reason(endpoint)
        if reason is None:
            # Last, because admitting a half-open endpoint reserves its probe.
            reason = self.health.admit(endpoint.id)
        return reason


def _check_type(model: Model, wanted: str) -> None:
    """An embedding model answers only /v1/embeddings, a chat model every other door."""
    if model.spec.type == wanted:
        return
    if model.spec.type == "embedding":
        raise InvalidRequest(
            f"{model.id} is an embedding model: call it through /v1/embeddings.", param="model"
        )
    raise InvalidRequest(
        f"{model.id} is a chat model, not an embedding model: call it through "
        "/v1/chat/completions, /v1/messages or /v1/responses.",
        param="model",
    )


def _check_request_fits(request: ChatRequest, model: Model) -> None:
    modalities = model.spec.input_modalities
    for index, message in enumerate(request.messages):
        if not isinstance(message, UserMessage) or isinstance(message.content, str):
            continue
        for part_index, part in enumerate(message.content):
            needed = (
                "image"
                if isinstance(part, ImagePart)
                else "file"
                if isinstance(part, FilePart)
                else None
            )
            if needed and needed not in modalities:
                param = f"messages[{index}].content[{part_index}]"
                raise InvalidRequest(
                    f"The model {model.id} does not accept {needed} input "
                    f"(it accepts: {', '.join(modalities)}).",
                    param=param,
                )
    estimate = min_prompt_tokens(request)
    context = max(ep.context_length for ep in model.endpoints)
    if estimate > context:
        raise InvalidRequest(
            f"The prompt is at least {estimate} tokens, but {model.id} has a context length "
            f"of {context} tokens. Shorten the messages.",
            param="messages",
        )
    limit = request.output_limit
    max_output = max(ep.max_output for ep in model.endpoints)
    if limit is not None and limit > max_output:
        param = "max_completion_tokens" if request.max_completion_tokens else "max_tokens"
        raise InvalidRequest(
            f"'{param}' is {limit}, but {model.id} can produce at most {max_output} tokens.",
            param=param,
        )
