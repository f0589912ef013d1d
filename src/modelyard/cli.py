"""The `modelyard` command. `serve` runs the gateway; the other commands talk to one."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import shlex
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ParamSpec

import typer
import uvicorn
from rich.console import Console
from rich.table import Table

from modelyard.catalog import CatalogError
from modelyard.cli_client import AdminClient, CliError
from modelyard.config import ADMIN_KEY_FILE, Settings
from modelyard.secret_box import SecretBoxError

if TYPE_CHECKING:
    from modelyard.gateway import Gateway

P = ParamSpec("P")
app = typer.Typer(add_completion=False, no_args_is_help=True, help="modelyard model gateway")
console = Console(stderr=True, soft_wrap=True)


@app.callback()
def _commands() -> None:
    """modelyard: an OpenAI-compatible model gateway. `modelyard serve` starts it."""


def _banner(gateway: Gateway) -> None:
    """Where to reach the gateway and how to call it. A key is shown in full only by the
    start that made it (log collectors keep what is printed); later starts say where it is."""
    from modelyard.gateway import BOOTSTRAP_KEY_FILE, BOOTSTRAP_MODEL

    settings = gateway.settings
    url = settings.base_url
    console.print(
        f"\n[bold green]modelyard[/] is serving at [bold]{url}[/] (OpenAI base URL: {url}/v1)"
    )
    admin_file = settings.data_dir / ADMIN_KEY_FILE
    if gateway.admin_key_created:
        admin = f"[bold]{gateway.admin_key}[/]  (shown once; kept in {admin_file})"
    elif settings.admin_key:
        admin = "from MODELYARD_ADMIN_KEY"
    else:
        admin = f"kept in {admin_file}"
    console.print(f"Admin key (CLI and /admin): {admin}", highlight=False)
    key_file = settings.data_dir / BOOTSTRAP_KEY_FILE
    if gateway.bootstrap_key is not None:
        bearer = gateway.bootstrap_key
        console.print(
            f"Key of the app 'default' (INFERENCE_KEY), shown once; kept in {key_file}. Try it:\n",
            highlight=False,
        )
    elif key_file.is_file():
        bearer = f"$(cat {shlex.quote(str(key_file))})"
        console.print(f"Key of the app 'default' is kept in {key_file}. Try it:\n", highlight=False)
    else:
        console.print(
            "Create an app and a key: modelyard apps:create my-app && "
            f"modelyard models:create {BOOTSTRAP_MODEL} -a my-app",
            highlight=False,
        )
        return
    body = json.dumps(
        {
            "model": BOOTSTRAP_MODEL,
            "max_tokens": 64,
            "messages": [{"role": "user", "content": "Say hello"}],
        }
    )
    curl = (
        f'curl {url}/v1/chat/completions -H "Authorization: Bearer {bearer}" '
        f"-H 'Content-Type: application/json' -d {shlex.quote(body)}"
    )
    print(curl, flush=True)
    print(flush=True)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on")] = None,
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="Where state is kept")] = None,
    catalog: Annotated[
        Path | None, typer.Option(help="Operator catalog TOML merged over the built-in one")
    ] = None,
    access_log: Annotated[bool, typer.Option(help="Log every request")] = False,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Worker processes sharing the port and the database; each loads its own "
            "copy of the embedded model",
        ),
    ] = 1,
) -> None:
    """Start the gateway (loads the embedded model first; the first start assembles it)."""
    from modelyard.app import LOG_FORMAT, build_app
    from modelyard.gateway import Gateway
    from modelyard.server import http_protocol

    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    try:
        settings = Settings.from_env(
            host=host, port=port, data_dir=data_dir, catalog_file=catalog, show_progress=True
        )
        protocol = http_protocol(settings)
        gateway = Gateway.create(settings)
    except (CatalogError, SecretBoxError, ValueError) as exc:
        console.print(f"[red]cannot start:[/] {exc}", highlight=False)
        raise typer.Exit(1) from exc
    uvicorn_options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "loop": "uvloop",
        # httptools with limits on heads, bodies, time and connections (modelyard.server);
        # no websocket routes, so no websocket upgrade either.
        "http": protocol,
        "ws": "none",
        "access_log": access_log,
        "log_level": "info",
        "timeout_graceful_shutdown": 30,
    }
    if workers > 1:
        _serve_workers(settings, gateway, workers, uvicorn_options)
        return
    asgi = build_app(
        settings,
        gateway,
        on_started=lambda: _banner(gateway),
    )
    uvicorn.run(asgi, **uvicorn_options)


def _serve_workers(
    settings: Settings, gateway: Gateway, workers: int, uvicorn_options: dict[str, Any]
) -> None:
    """uvicorn's multi-process mode. This process starts and stops a gateway once, so that
    the one-time work (migrations, admin key, bootstrap app, assembling the built-in model
    file) is done before the workers start and they do not race for it; then each worker
    builds a full gateway with `create_app()` from the MODELYARD_* variables set here."""
    asyncio.run(_prepare(gateway))
    os.environ.update(
        {
            "MODELYARD_HOST": settings.host,
            "MODELYARD_PORT": str(settings.port),
            "MODELYARD_DATA_DIR": str(settings.data_dir.resolve()),
        }
    )
    if settings.catalog_file is not None:
        os.environ["MODELYARD_CATALOG"] = str(settings.catalog_file.resolve())
    _banner(gateway)
    console.print(f"Starting {workers} workers (each with its own copy of the embedded model)")
    uvicorn.run("modelyard.app:create_app", factory=True, workers=workers, **uvicorn_options)


async def _prepare(gateway: Gateway) -> None:
    await gateway.start()
    await gateway.close()


AppOption = Annotated[str, typer.Option("--app", "-a", help="The app")]
# Piped output (scripts, tests) gets full-width tables instead of rich's 80-column default.
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)


def _fail_cleanly(command: Callable[P, None]) -> Callable[P, None]:
    """Turn a CliError into one line on stderr and exit code 1 (no traceback)."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            command(*args, **kwargs)
        except CliError as exc:
            console.print(f"[red]error:[/] {exc}", highlight=False)
            raise typer.Exit(1) from exc

    return run


def _client() -> AdminClient:
    return AdminClient()


@app.command("apps:create")
@_fail_cleanly
def apps_create(name: Annotated[str, typer.Argument(help="App name")]) -> None:
    """Create an app."""
    created = _client().request("POST", "/admin/apps", json={"name": name})
    out.print(f"Created app {created['name']} ({created['id']})")


@app.command("apps")
@_fail_cleanly
def apps_list() -> None:
    """List apps."""
    table = Table("name", "id", "created")
    for item in _client().request("GET", "/admin/apps")["data"]:
        table.add_row(item["name"], item["id"], item["created_at"][:19])
    out.print(table)


@app.command("models:create")
@_fail_cleanly
def models_create(
    model: Annotated[str, typer.Argument(help="Catalog model id or alias")],
    app_name: AppOption,
    alias: Annotated[str, typer.Option("--as", help="Config var prefix")] = "INFERENCE",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Attach a model to an app; prints its config vars (the key is shown only now)."""
    created = _client().request(
        "POST", f"/admin/apps/{app_name}/models", json={"model": model, "alias": alias}
    )
    config = created["config"]
    if as_json:
        print(json.dumps(config, indent=2))
        return
    for name, value in config.items():
        print(f"{name}={value}")


@app.command("models:list")
@_fail_cleanly
def models_list() -> None:
    """List the catalog's models."""
    table = Table("id", "name", "context", "prompt $/M", "completion $/M")
    for item in _client().request("GET", "/v1/models")["data"]:
        pricing = item["pricing"]
        table.add_row(
            item["id"],
            item["name"],
            str(item["context_length"]),
            _per_million(pricing["prompt"]),
            _per_million(pricing["completion"]),
        )
    out.print(table)


def _per_million(per_token: str) -> str:
    return f"{Decimal(per_token) * 1_000_000:.2f}"


@app.command("models:info")
@_fail_cleanly
def models_info(
    app_name: AppOption,
    resource: Annotated[str | None, typer.Argument(help="Alias or resource id")] = None,
) -> None:
    """Show an app's model resources (or one of them)."""
    client = _client()
    if resource is None:
        resources = client.request("GET", f"/admin/apps/{app_name}/models")["data"]
        table = Table("alias", "model", "id", "created")
        for item in resources:
            table.add_row(item["alias"], item["model_id"], item["id"], item["created_at"][:19])
        out.print(table)
        return
    info = client.request("GET", f"/admin/apps/{app_name}/models/{resource}")
    for name, value in info["config"].items():
        print(f"{name}={value}")
    print(f"resource_id={info['resource']['id']}")
    print(f"model_name={info['model']['name']}")


@app.command("models:destroy")
@_fail_cleanly
def models_destroy(
    resource: Annotated[str, typer.Argument(help="Alias or resource id")], app_name: AppOption
) -> None:
    """Destroy a model resource (its key stops working)."""
    _client().request("DELETE", f"/admin/apps/{app_name}/models/{resource}")
    out.print(f"Destroyed {resource} on {app_name}")


@app.command("models:detach")
@_fail_cleanly
def models_detach(
    alias: Annotated[str, typer.Argument(help="Alias to detach")], app_name: AppOption
) -> None:
    """Detach a model alias from an app (its key stops working)."""
    _client().request("DELETE", f"/admin/apps/{app_name}/attachments/{alias}")
    out.print(f"Detached {alias} from {app_name}")


@app.command("models:call")
@_fail_cleanly
def models_call(
    resource: Annotated[str, typer.Argument(help="Alias or resource id")],
    app_name: AppOption,
    prompt: Annotated[
        str, typer.Option("--prompt", "-p", help="The user message (the text to embed)")
    ],
    opts: Annotated[
        str | None,
        typer.Option(help="Extra request fields as JSON (e.g. max_tokens, or dimensions)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole response")] = False,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to file")] = None,
) -> None:
    """Call an app's model. A chat model's answer streams to the terminal as it is
    generated; an embedding model's vector is printed as one line of JSON."""
    body: dict[str, Any] = {}
    if opts:
        try:
            body = json.loads(opts)
        except ValueError as exc:
            raise CliError(f"--opts is not valid JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise CliError("--opts must be a JSON object")
    client = _client()
    base = f"/admin/apps/{app_name}/models/{resource}"
    path = f"{base}/call"
    if client.request("GET", base)["model"].get("type") == "embedding":
        body["input"] = prompt
        answer = client.request("POST", path, json=body)
        text = json.dumps(answer, indent=2) if as_json else json.dumps(_vector(answer))
        (output.write_text(text + "\n") if output else print(text))
        return
    body["messages"] = [{"role": "user", "content": prompt}]
    if as_json:
        body["stream"] = False
        text = json.dumps(client.request("POST", path, json=body), indent=2)
        (output.write_text(text + "\n") if output else print(text))
        return
    body["stream"] = True
    pieces: list[str] = []
    with client.stream(path, body) as response:
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if "error" in chunk:
                raise CliError(chunk["error"]["message"])
            for choice in chunk.get("choices", []):
                piece = choice["delta"].get("content") or ""
                pieces.append(piece)
                if output is None:
                    print(piece, end="", flush=True)
    if output is None:
        print()
    else:
        output.write_text("".join(pieces))


def _vector(answer: dict[str, Any]) -> Any:
    """The one input's embedding: a list of floats, or a base64 string when
    encoding_format asked for it."""
    return answer["data"][0]["embedding"]


@app.command("config")
@_fail_cleanly
def config_vars(app_name: AppOption) -> None:
    """Print an app's config vars."""
    for name, value in _client().request("GET", f"/admin/apps/{app_name}/config")["data"].items():
        print(f"{name}={value}")


@app.command("keys:create")
@_fail_cleanly
def keys_create(
    app_name: AppOption,
    limit: Annotated[float | None, typer.Option(help="Spend limit in USD")] = None,
    limit_reset: Annotated[
        str | None, typer.Option("--limit-reset", help="daily | weekly | monthly")
    ] = None,
    zdr: Annotated[bool, typer.Option(help="Zero data retention for this key")] = False,
    label: Annotated[str, typer.Option(help="A name for the key")] = "",
) -> None:
    """Create an API key for an app's models; the key is printed alone on the last line."""
    body: dict[str, Any] = {"label": label, "zdr": zdr}
    if limit is not None:
        body["limit"] = limit
    if limit_reset is not None:
        body["limit_reset"] = limit_reset
    created = _client().request("POST", f"/admin/apps/{app_name}/keys", json=body)
    out.print(f"Created key {created['id']} for {app_name} (shown once):")
    print(created["key"])


@app.command("keys:list")
@_fail_cleanly
def keys_list(app_name: AppOption) -> None:
    """List an app's keys."""
    table = Table("id", "label", "prefix", "limit", "reset", "zdr", "revoked")
    for key in _client().request("GET", f"/admin/apps/{app_name}/keys")["data"]:
        limit = "" if key["limit"] is None else f"${key['limit']}"
        table.add_row(
            key["id"],
            key["label"],
            key["prefix"] + "…",
            limit,
            key["limit_reset"] or "",
            "yes" if key["zdr"] else "",
            "yes" if key["revoked"] else "",
        )
    out.print(table)


@app.command("keys:revoke")
@_fail_cleanly
def keys_revoke(key_id: Annotated[str, typer.Argument(help="Key id")], app_name: AppOption) -> None:
    """Revoke a key."""
    _client().request("DELETE", f"/admin/apps/{app_name}/keys/{key_id}")
    out.print(f"Revoked {key_id}")


@app.command("providers:keys:set")
@_fail_cleanly
def provider_keys_set(
    provider: Annotated[str, typer.Argument(help="Catalog provider id, e.g. anthropic")],
    app_name: AppOption,
    key: Annotated[
        str | None, typer.Option(help="The key (asked for, hidden, when left out)")
    ] = None,
) -> None:
    """Store the app's own key for a provider (BYOK), encrypted; its requests then use it."""
    secret = key or typer.prompt(f"{provider} API key", hide_input=True)
    _client().request(
        "PUT", f"/admin/apps/{app_name}/providers/{provider}/key", json={"key": secret}
    )
    out.print(f"{app_name} now uses its own key for {provider}")


@app.command("providers:keys:unset")
@_fail_cleanly
def provider_keys_unset(
    provider: Annotated[str, typer.Argument(help="Catalog provider id")], app_name: AppOption
) -> None:
    """Forget the app's own key for a provider."""
    _client().request("DELETE", f"/admin/apps/{app_name}/providers/{provider}/key")
    out.print(f"{app_name} uses the gateway's key for {provider} again")


@app.command("providers:keys:list")
@_fail_cleanly
def provider_keys_list(app_name: AppOption) -> None:
    """Providers for which the app uses its own key."""
    for item in _client().request("GET", f"/admin/apps/{app_name}/providers")["data"]:
        print(item["provider"])


@app.command("usage")
@_fail_cleanly
def usage(
    app_name: AppOption,
    days: Annotated[int, typer.Option(help="How many days back")] = 30,
) -> None:
    """Requests, tokens and spend per day, model and API."""
    rows = _client().request("GET", f"/admin/apps/{app_name}/usage", params={"days": days})
    table = Table(
        "day", "model", "api", "requests", "prompt tokens", "completion tokens", "spend $"
    )
    for row in rows["data"]:
        table.add_row(
            row["day"],
            row["model"],
            row["api"],
            str(row["requests"]),
            str(row["tokens_prompt"]),
            str(row["tokens_completion"]),
            f"{row['cost']:.6f}",
        )
    out.print(table)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
