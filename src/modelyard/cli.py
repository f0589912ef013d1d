"""The `modelyard` command. `serve` runs the gateway; the other commands talk to one."""

from __future__ import annotations

import logging
import shlex
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from rich.console import Console

from modelyard.catalog import CatalogError
from modelyard.config import Settings

app = typer.Typer(add_completion=False, no_args_is_help=True, help="modelyard model gateway")
console = Console(stderr=True, soft_wrap=True)


@app.callback()
def _commands() -> None:
    """modelyard: an OpenAI-compatible model gateway. `modelyard serve` starts it."""


def _banner(settings: Settings, admin_key: str) -> None:
    url = settings.base_url
    body = (
        '{"model": "google/gemma-3-270m", "messages": [{"role": "user", "content": "Say hello"}]}'
    )
    curl = (
        f"curl {url}/v1/chat/completions -H 'Authorization: Bearer {admin_key}' "
        f"-H 'Content-Type: application/json' -d {shlex.quote(body)}"
    )
    console.print(
        f"\n[bold green]modelyard[/] is serving at [bold]{url}[/] (OpenAI base URL: {url}/v1)"
    )
    where = settings.data_dir / "admin_key"
    console.print(
        f"Admin key: [bold]{admin_key}[/]  (kept in {where} unless MODELYARD_ADMIN_KEY is set)"
    )
    console.print("Try it:\n")
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
) -> None:
    """Start the gateway (loads the embedded model first; the first start assembles it)."""
    from modelyard.app import build_app
    from modelyard.gateway import Gateway

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = Settings.from_env(
        host=host, port=port, data_dir=data_dir, catalog_file=catalog, show_progress=True
    )
    try:
        gateway = Gateway.create(settings)
    except CatalogError as exc:
        console.print(f"[red]catalog error:[/] {exc}")
        raise typer.Exit(1) from exc
    asgi = build_app(settings, gateway, on_started=lambda: _banner(settings, gateway.admin_key))
    uvicorn.run(
        asgi,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        access_log=access_log,
        log_level="info",
        timeout_graceful_shutdown=30,
    )


def main() -> None:
    app()


if __name__ == "__main__":
    main()
