"""The admin API under /admin (admin key only): apps, model resources, keys, usage.

Heroku's model: an app owns model resources; attaching a model to an app under an alias
issues a key scoped to that model and yields the config vars ALIAS_URL, ALIAS_KEY and
ALIAS_MODEL_ID. Plain keys are returned once, at creation; the store keeps only hashes.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from modelyard.access.caller import Caller
from modelyard.api.chat import ChatCompletions
from modelyard.api.embeddings import EmbeddingsApi
from modelyard.api.http import ClientGone, json_response, read_body, send_error
from modelyard.errors import GatewayError, InvalidRequest, NotFound
from modelyard.gateway import Gateway
from modelyard.schema.chat import parse_chat_request
from modelyard.schema.embeddings import parse_embeddings_request
from modelyard.schema.json_depth import check_depth
from modelyard.store import ApiKey, App, ModelResource

T = TypeVar("T")
APP_NAME = re.compile(r"^[a-z][a-z0-9-]{1,29}$")
ALIAS = re.compile(r"^[A-Z][A-Z0-9_]*$")
# Admin bodies are a few small JSON fields; anything near this is not one (413).
ADMIN_BODY_BYTES = 64 * 1024


class NewApp(msgspec.Struct, forbid_unknown_fields=True):
    name: str


class NewResource(msgspec.Struct, forbid_unknown_fields=True):
    model: str
    alias: str = "INFERENCE"


class ProviderKey(msgspec.Struct, forbid_unknown_fields=True):
    key: Annotated[str, msgspec.Meta(min_length=1)]


class NewKey(msgspec.Struct, forbid_unknown_fields=True):
    label: str = ""
    limit: Annotated[float, msgspec.Meta(ge=0)] | None = None  # USD
    limit_reset: Literal["daily", "weekly", "monthly"] | None = None
    zdr: bool = False
    rpm: Annotated[int, msgspec.Meta(ge=1)] | None = None
    tpm: Annotated[int, msgspec.Meta(ge=1)] | None = None
    models: list[str] | None = None


async def _body(request: Request, kind: type[T]) -> T:
    raw = await read_body(request.scope, request.receive, ADMIN_BODY_BYTES)
    check_depth(raw)  # msgspec recurses on unknown fields: a deep one was a 500
    try:
        return msgspec.json.decode(raw or b"{}", type=kind)
    except msgspec.ValidationError as exc:
        message, _, where = str(exc).rpartition(" - at `$")
        param = where.rstrip("`").lstrip(".") or None
        raise InvalidRequest(f"{message or exc}.", param=param) from exc
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}") from exc


class AdminApi:
    def __init__(self, gateway: Gateway, chat: ChatCompletions, embeddings: EmbeddingsApi) -> None:
        self._gw = gateway
        self._chat = chat
        self._embeddings = embeddings

    def routes(self) -> list[BaseRoute]:
        handlers: list[tuple[str, str, Callable[[Request], Awaitable[Response]]]] = [
            ("/apps", "GET", self.list_apps),
            ("/apps", "POST", self.create_app),
            ("/apps/{app}", "GET", self.get_app),
            ("/apps/{app}/config", "GET", self.config),
            ("/apps/{app}/models", "GET", self.list_resources),
            ("/apps/{app}/models", "POST", self.attach_model),
            ("/apps/{app}/models/{resource}", "GET", self.resource_info),
            ("/apps/{app}/models/{resource}", "DELETE", self.destroy_resource),
            ("/apps/{app}/attachments/{alias}", "DELETE", self.detach),
            ("/apps/{app}/keys", "GET", self.list_keys),
            ("/apps/{app}/keys", "POST", self.create_key),
            ("/apps/{app}/keys/{key_id}", "DELETE", self.revoke_key),
            ("/apps/{app}/usage", "GET", self.usage),
            ("/apps/{app}/providers", "GET", self.list_provider_keys),
            ("/apps/{app}/providers/{provider}/key", "PUT", self.set_provider_key),
            ("/apps/{app}/providers/{provider}/key", "DELETE", self.unset_provider_key),
        ]
        routes: list[BaseRoute] = [
            Route(path, handler if method == "GET" else self._write(handler), methods=[method])
            for path, method, handler in handlers
        ]
        # Calls a model; writes nothing.
        routes.append(
            Route("/apps/{app}/models/{resource}/call", _Asgi(self.call_resource), methods=["POST"])
        )
        return routes

    def _write(
        self, handler: Callable[[Request], Awaitable[Response]]
    ) -> Callable[[Request], Awaitable[Response]]:
        """Every admin write drops this process's cached callers once it succeeds, so a
        revoked key or a detached model is refused at once (other replicas: within the
        authenticator's TTL)."""

        @functools.wraps(handler)
        async def write(request: Request) -> Response:
            response = await handler(request)
            self._gw.auth.forget()
            return response

        return write

    # -- helpers ---------------------------------------------------------------------------
    def _admin(self, request: Request) -> None:
        self._gw.auth.require_admin(request.headers.get("authorization"))

    async def _app(self, request: Request) -> App:
        self._admin(request)
        name = request.path_params["app"]
        app = await self._gw.store.get_app(name)
        if app is None:
            raise NotFound(
                f"No app named {name!r}. Create it with `modelyard apps:create {name}`.",
                param="app",
            )
        return app

    async def _resource(self, app: App, ref: str) -> ModelResource:
        resource = await self._gw.store.find_resource(app.id, ref)
        if resource is None:
            raise NotFound(f"App {app.name!r} has no model resource {ref!r}.", param="resource")
        return resource

    def _config_vars(self, resource: ModelResource, key: str | None) -> dict[str, str]:
        return {
            f"{resource.alias}_URL": self._gw.settings.base_url,
            f"{resource.alias}_KEY": key or "(shown once, when the resource was created)",
            f"{resource.alias}_MODEL_ID": resource.model_id,
        }

    # -- apps ------------------------------------------------------------------------------
    async def list_apps(self, request: Request) -> Response:
        self._admin(request)
        return json_response({"data": [asdict(a) for a in await self._gw.store.list_apps()]})

    async def create_app(self, request: Request) -> Response:
        self._admin(request)
        body = await _body(request, NewApp)
        if not APP_NAME.match(body.name):
            raise InvalidRequest(
                "App names are 2-30 characters: lower-case letters, digits and dashes, "
                "starting with a letter.",
                param="name",
            )
        app = await self._gw.store.create_app(body.name)
        return json_response(asdict(app), 201)

    async def get_app(self, request: Request) -> Response:
        app = await self._app(request)
        store = self._gw.store
        resources = await store.list_resources(app.id)
        keys = await store.list_keys(app.id)
        return json_response(
            {
                **asdict(app),
                "models": [asdict(r) for r in resources],
                "keys": [_key_body(k) for k in keys],
            }
        )

    async def config(self, request: Request) -> Response:
        app = await self._app(request)
        config: dict[str, str] = {}
        for resource in await self._gw.store.list_resources(app.id):
            config.update(self._config_vars(resource, None))
        return json_response({"data": config})

    # -- model resources -------------------------------------------------------------------
    async def list_resources(self, request: Request) -> Response:
        app = await self._app(request)
        resources = await self._gw.store.list_resources(app.id)
        return json_response({"data": [asdict(r) for r in resources]})

    async def attach_model(self, request: Request) -> Response:
        app = await self._app(request)
        body = await _body(request, NewResource)
        model = self._gw.catalog.find(body.model)
        if model is None:
            raise NotFound(
                f"The model {body.model!r} does not exist. "
                "`modelyard models:list` shows the catalog.",
                param="model",
            )
        if not ALIAS.match(body.alias):
            raise InvalidRequest(
                f"Invalid alias {body.alias!r}: use upper-case letters, digits and '_', "
                "starting with a letter (e.g. INFERENCE, CHAT_2).",
                param="alias",
            )
        resource, _, plain = await self._gw.store.attach_model(app.id, model.id, body.alias)
        return json_response(
            {"resource": asdict(resource), "config": self._config_vars(resource, plain)}, 201
        )

    async def resource_info(self, request: Request) -> Response:
        app = await self._app(request)
        resource = await self._resource(app, request.path_params["resource"])
        model = self._gw.catalog.find(resource.model_id)
        return json_response(
            {
                "resource": asdict(resource),
                "config": self._config_vars(resource, None),
                "model": {
                    "id": resource.model_id,
                    "name": model.spec.name if model else None,
                    "context_length": model.spec.context_length if model else None,
                    # "chat" or "embedding": which body models:call sends.
                    "type": model.spec.type if model else None,
                    "dimensions": model.spec.dimensions if model else None,
                },
            }
        )

    async def destroy_resource(self, request: Request) -> Response:
        app = await self._app(request)
        resource = await self._resource(app, request.path_params["resource"])
        await self._gw.store.destroy_resource(resource.id)
        return json_response({"destroyed": resource.id})

    async def detach(self, request: Request) -> Response:
        app = await self._app(request)
        resource = await self._resource(app, request.path_params["alias"])
        await self._gw.store.detach_resource(resource.id)
        return json_response({"detached": resource.alias})

    async def call_resource(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Call a model resource as its app would (the CLI's models:call)."""
        request = Request(scope, receive)
        try:
            app = await self._app(request)
            resource = await self._resource(app, request.path_params["resource"])
            keys = {k.id: k for k in await self._gw.store.list_keys(app.id)}
            body = await read_body(scope, receive, self._gw.settings.max_body_bytes)
            model = self._gw.catalog.find(resource.model_id)
            embedding = model is not None and model.spec.type == "embedding"
            # An embedding model's resource takes an embeddings body ({"input": ...}).
            if embedding:
                embeddings_call = parse_embeddings_request(body, model_override=resource.model_id)
            else:
                chat_request = parse_chat_request(body, model_override=resource.model_id)
        except ClientGone:
            return
        except GatewayError as error:
            await send_error(send, error)
            return
        caller = Caller(
            is_admin=False,
            app=app,
            key=keys.get(resource.key_id),
            allowed_models=frozenset({resource.model_id}),
        )
        if embedding:
            await self._embeddings.serve(scope, send, caller, embeddings_call)
        else:
            await self._chat.serve(scope, receive, send, caller, chat_request)

    # -- keys ------------------------------------------------------------------------------
    async def list_keys(self, request: Request) -> Response:
        app = await self._app(request)
        return json_response(
            {"data": [_key_body(k) for k in await self._gw.store.list_keys(app.id)]}
        )

    async def create_key(self, request: Request) -> Response:
        app = await self._app(request)
        body = await _body(request, NewKey)
        if body.limit_reset is not None and body.limit is None:
            raise InvalidRequest("'limit_reset' needs a 'limit'.", param="limit_reset")
        models = None
        if body.models is not None:
            attached = {r.model_id for r in await self._gw.store.list_resources(app.id)}
            resolved = []
            for name in body.models:
                model = self._gw.catalog.find(name)
                if model is None or model.id not in attached:
                    raise InvalidRequest(
                        f"{name!r} is not a model attached to {app.name!r}.", param="models"
                    )
                resolved.append(model.id)
            models = tuple(resolved)
        key, plain = await self._gw.store.create_key(
            app.id,
            label=body.label,
            allowed_models=models,
            limit_usd=Decimal(str(body.limit)) if body.limit is not None else None,
            limit_reset=body.limit_reset,
            rpm=body.rpm,
            tpm=body.tpm,
            zdr=body.zdr,
        )
        return json_response({**_key_body(key), "key": plain}, 201)

    async def revoke_key(self, request: Request) -> Response:
        app = await self._app(request)
        key = await self._gw.store.revoke_key(app.id, request.path_params["key_id"])
        if key is None:
            raise NotFound(
                f"App {app.name!r} has no key {request.path_params['key_id']!r}.", param="key_id"
            )
        return json_response(_key_body(key))

    # -- the app's own provider keys (BYOK) ---------------------------------------------------
    def _provider(self, request: Request) -> str:
        provider = request.path_params["provider"]
        if provider not in self._gw.catalog.providers:
            known = ", ".join(sorted(self._gw.catalog.providers))
            raise NotFound(
                f"No provider {provider!r} in the catalog (known: {known}).", param="provider"
            )
        return str(provider)

    async def list_provider_keys(self, request: Request) -> Response:
        app = await self._app(request)
        providers = sorted(await self._gw.store.provider_keys(app.id))
        return json_response({"data": [{"provider": p, "byok": True} for p in providers]})

    async def set_provider_key(self, request: Request) -> Response:
        app = await self._app(request)
        provider = self._provider(request)
        box = self._gw.secret_box
        if box is None:
            raise InvalidRequest(
                "Storing provider keys needs MODELYARD_SECRET_KEY set on the gateway "
                "(they are encrypted with it).",
                param="key",
            )
        body = await _body(request, ProviderKey)
        await self._gw.store.set_provider_key(app.id, provider, box.seal(body.key))
        return json_response({"provider": provider, "byok": True})

    async def unset_provider_key(self, request: Request) -> Response:
        app = await self._app(request)
        provider = self._provider(request)
        if not await self._gw.store.delete_provider_key(app.id, provider):
            raise NotFound(
                f"App {app.name!r} has no key of its own for {provider!r}.", param="provider"
            )
        return json_response({"provider": provider, "byok": False})

    # -- usage -----------------------------------------------------------------------------
    async def usage(self, request: Request) -> Response:
        app = await self._app(request)
        days = request.query_params.get("days", "30")
        if not days.isdigit() or not 1 <= int(days) <= 366:
            raise InvalidRequest("'days' must be a whole number from 1 to 366.", param="days")
        since = datetime.now(UTC) - timedelta(days=int(days))
        rows = await self._gw.store.usage_by_day(app.id, since)
        return json_response({"data": [asdict(r) for r in rows]})


class _Asgi:
    """Wraps a raw ASGI handler so Starlette's Route calls it as an ASGI app."""

    def __init__(self, handler: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self._handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._handler(scope, receive, send)


def _key_body(key: ApiKey) -> dict[str, Any]:
    body = asdict(key)
    body["limit"] = body.pop("limit_usd")
    body["revoked"] = key.revoked_at is not None
    return body
