"""How the CLI reaches a running gateway: the admin API over HTTP, errors as one line."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from modelyard.config import ADMIN_KEY_FILE

DEFAULT_URL = "http://127.0.0.1:8080"


class CliError(Exception):
    """Shown to the user as one line; the command exits 1."""


def _admin_key() -> str:
    key = os.environ.get("MODELYARD_ADMIN_KEY")
    if key:
        return key
    data_dir = Path(os.environ.get("MODELYARD_DATA_DIR", ".modelyard"))
    path = data_dir / ADMIN_KEY_FILE
    if path.is_file():
        return path.read_text().strip()
    raise CliError(
        f"No admin key: set MODELYARD_ADMIN_KEY, or run from where {path} exists "
        "(MODELYARD_DATA_DIR)."
    )


class AdminClient:
    def __init__(self) -> None:
        self.base_url = os.environ.get("MODELYARD_URL", DEFAULT_URL).rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {_admin_key()}"},
            timeout=httpx.Timeout(30, read=600),
        )

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise CliError(f"cannot reach the gateway at {self.base_url}: {exc}") from exc
        if response.status_code >= 400:
            raise CliError(_error_message(response))
        return response.json()

    @contextmanager
    def stream(self, path: str, body: dict[str, Any]) -> Iterator[httpx.Response]:
        try:
            with self._http.stream("POST", path, json=body) as response:
                if response.status_code >= 400:
                    response.read()
                    raise CliError(_error_message(response))
                yield response
        except httpx.HTTPError as exc:
            raise CliError(f"cannot reach the gateway at {self.base_url}: {exc}") from exc


def _error_message(response: httpx.Response) -> str:
    try:
        error = response.json()["error"]
        return str(error["message"])
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}: {response.text[:200]}"
