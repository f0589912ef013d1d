"""The web pages: model list, model page, chat room, app pages and the admin login."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import parse_qs, quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route, request_response
from starlette.staticfiles import StaticFiles

from modelyard.api.http import ClientGone, read_body
from modelyard.errors import Forbidden
from modelyard.gateway import BOOTSTRAP_MODEL, Gateway
from modelyard.web.app_view import app_context
from modelyard.web.model_view import cheapest, model_context
from modelyard.web.render import page
from modelyard.web.security_headers import SecurityHeaders
from modelyard.web.session import CSRF_FIELD, AdminSessions

STATIC = Path(__file__).parent / "static"
# The pages' forms are a key and a token or two; anything bigger is refused before reading.
MAX_FORM_BYTES = 4096

Handler = Callable[[Request], Awaitable[Response]]
FormHandler = Callable[[Request, dict[str, str]], Awaitable[Response]]


def _with_form(handler: FormHandler) -> Handler:
    """Read a urlencoded form of at most MAX_FORM_BYTES (413 past it) before the handler."""

    async def endpoint(request: Request) -> Response:
        try:
            body = await read_body(request.scope, request.receive, MAX_FORM_BYTES)
        except ClientGone:  # it left mid-body: nobody to answer, nothing to log
            return Response(status_code=400)
        fields = parse_qs(body.decode(errors="replace"))
        return await handler(request, {name: values[0] for name, values in fields.items()})

    return endpoint


def _route(path: str, handler: Handler, method: str) -> Route:
    return Route(path, SecurityHeaders(request_response(handler)), methods=[method])


def _safe_next(target: str | None) -> str:
    """Only same-site paths: never redirect a login to another host."""
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return "/apps"


class WebPages:
    def __init__(self, gateway: Gateway) -> None:
        self._gw = gateway
        self._sessions = AdminSessions(gateway)

    def routes(self) -> list[BaseRoute]:
        return [
            _route("/", self.home, "GET"),
            _route("/models", self.models, "GET"),
            _route("/models/{author}/{slug}", self.model, "GET"),
            _route("/chat", self.chat, "GET"),
            _route("/apps", self.apps, "GET"),
            _route("/apps/{name}", self.app, "GET"),
            _route("/login", self.login_form, "GET"),
            _route("/login", _with_form(self.login), "POST"),
            _route("/logout", _with_form(self.logout), "POST"),
            Mount("/static", SecurityHeaders(StaticFiles(directory=STATIC)), name="static"),
        ]

    async def home(self, request: Request) -> Response:
        return RedirectResponse("/models", status_code=302)

    async def models(self, request: Request) -> Response:
        models = sorted(self._gw.catalog.models.values(), key=lambda m: m.spec.name.lower())
        rows = [(m, cheapest(m)) for m in models]
        return page("models.html", nav="models", rows=rows)

    async def model(self, request: Request) -> Response:
        author, slug = request.path_params["author"], request.path_params["slug"]
        model = self._gw.catalog.find_by_path(author, slug)
        if model is None:
            return page("not_found.html", status=404, nav="models", what=f"{author}/{slug}")
        store = self._gw.store
        names = {a.id: a.name for a in await store.list_apps()}
        context = await model_context(
            self._gw.stats, self._gw.catalog, model, names, self._gw.settings.base_url
        )
        return page("model.html", nav="models", **context)

    async def chat(self, request: Request) -> Response:
        # Embedding models do not chat (the chat doors refuse them): not offered here.
        chat_models = [m for m in self._gw.catalog.models.values() if m.spec.type == "chat"]
        models = sorted(chat_models, key=lambda m: m.spec.name.lower())
        # Preselect the model a fresh install's app key can use.
        default = BOOTSTRAP_MODEL if BOOTSTRAP_MODEL in self._gw.catalog.models else models[0].id
        return page("chat.html", nav="chat", models=models, default=default)

    def _login_redirect(self, request: Request) -> Response:
        return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)

    async def apps(self, request: Request) -> Response:
        session = await self._sessions.current(request)
        if session is None:
            return self._login_redirect(request)
        apps = await self._gw.store.list_apps()
        return page("apps.html", nav="apps", apps=apps, csrf_token=session.csrf_token)

    async def app(self, request: Request) -> Response:
        session = await self._sessions.current(request)
        if session is None:
            return self._login_redirect(request)
        app = await self._gw.store.get_app(request.path_params["name"])
        if app is None:
            what = f"app {request.path_params['name']}"
            return page("not_found.html", status=404, nav="apps", what=what)
        context = await app_context(self._gw.store, app)
        return page("app.html", nav="apps", csrf_token=session.csrf_token, **context)

    async def login_form(self, request: Request) -> Response:
        target = _safe_next(request.query_params.get("next"))
        return page("login.html", nav="apps", next=target, error=None)

    async def login(self, request: Request, form: dict[str, str]) -> Response:
        target = _safe_next(form.get("next"))
        if not self._sessions.key_is_admin(form.get("admin_key", "")):
            error = "That is not this gateway's admin key."
            return page("login.html", status=401, nav="apps", next=target, error=error)
        response = RedirectResponse(target, status_code=303)
        await self._sessions.open(response)
        return response

    async def logout(self, request: Request, form: dict[str, str]) -> Response:
        session = await self._sessions.current(request)
        if session is None:  # nothing to end
            return RedirectResponse("/login", status_code=303)
        if not session.accepts(form.get(CSRF_FIELD)):
            raise Forbidden(f"The form's {CSRF_FIELD} is missing or wrong; reload the page.")
        response = RedirectResponse("/models", status_code=303)
        await self._sessions.close(session, response)
        return response
