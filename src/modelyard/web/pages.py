"""The web pages: model list, model page, chat room, app pages and the admin login."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from modelyard.gateway import BOOTSTRAP_MODEL, Gateway
from modelyard.web import session
from modelyard.web.app_view import app_context
from modelyard.web.model_view import cheapest, model_context
from modelyard.web.render import page

STATIC = Path(__file__).parent / "static"
MAX_FORM_BYTES = 4096


def _safe_next(target: str | None) -> str:
    """Only same-site paths: never redirect a login to another host."""
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return "/apps"


class WebPages:
    def __init__(self, gateway: Gateway) -> None:
        self._gw = gateway

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/", self.home, methods=["GET"]),
            Route("/models", self.models, methods=["GET"]),
            Route("/models/{author}/{slug}", self.model, methods=["GET"]),
            Route("/chat", self.chat, methods=["GET"]),
            Route("/apps", self.apps, methods=["GET"]),
            Route("/apps/{name}", self.app, methods=["GET"]),
            Route("/login", self.login_form, methods=["GET"]),
            Route("/login", self.login, methods=["POST"]),
            Route("/logout", self.logout, methods=["POST"]),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
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
        models = sorted(self._gw.catalog.models.values(), key=lambda m: m.spec.name.lower())
        # Preselect the model a fresh install's app key can use.
        default = BOOTSTRAP_MODEL if BOOTSTRAP_MODEL in self._gw.catalog.models else models[0].id
        return page("chat.html", nav="chat", models=models, default=default)

    def _login_redirect(self, request: Request) -> Response:
        return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)

    async def apps(self, request: Request) -> Response:
        if not session.is_admin(self._gw, request):
            return self._login_redirect(request)
        return page("apps.html", nav="apps", apps=await self._gw.store.list_apps())

    async def app(self, request: Request) -> Response:
        if not session.is_admin(self._gw, request):
            return self._login_redirect(request)
        app = await self._gw.store.get_app(request.path_params["name"])
        if app is None:
            what = f"app {request.path_params['name']}"
            return page("not_found.html", status=404, nav="apps", what=what)
        return page("app.html", nav="apps", **await app_context(self._gw.store, app))

    async def login_form(self, request: Request) -> Response:
        target = _safe_next(request.query_params.get("next"))
        return page("login.html", nav="apps", next=target, error=None)

    async def login(self, request: Request) -> Response:
        body = await request.body()
        form = parse_qs(body[:MAX_FORM_BYTES].decode(errors="replace"))
        key = (form.get("admin_key") or [""])[0]
        target = _safe_next((form.get("next") or [""])[0])
        if not session.key_is_admin(self._gw, key):
            error = "That is not this gateway's admin key."
            return page("login.html", status=401, nav="apps", next=target, error=error)
        response = RedirectResponse(target, status_code=303)
        session.remember(response, key)
        return response

    async def logout(self, request: Request) -> Response:
        response = RedirectResponse("/models", status_code=303)
        session.forget(response)
        return response
