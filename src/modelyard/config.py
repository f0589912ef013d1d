"""Settings: the one typed place that reads MODELYARD_* environment variables and flags."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import Annotated, Literal, NamedTuple

from pydantic import Field, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsConfigDict

ADMIN_KEY_FILE = "admin_key"
ADMIN_KEY_PREFIX = "my-admin-"


class Settings(BaseSettings):
    """Every setting, typed; each field reads MODELYARD_<FIELD> (names that differ say so)
    from the environment or a `.env` file in the working directory."""

    model_config = SettingsConfigDict(
        env_prefix="MODELYARD_",
        env_file=".env",
        env_ignore_empty=True,
        extra="ignore",
        frozen=True,
        populate_by_name=True,
    )

    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path(".modelyard")
    catalog_file: Path | None = Field(default=None, validation_alias="MODELYARD_CATALOG")
    admin_key: str | None = None
    max_body_bytes: int = 20 * 1024 * 1024
    # The server's edge: request head size, head and whole-body deadlines, how long to keep
    # reading after an early answer, open connections per process.
    max_header_bytes: int = 32 * 1024
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    linger_s: float = 5.0
    max_connections: int = 1024
    keepalive_interval_s: float = 10.0
    show_progress: bool = False
    public_url: str | None = None
    # None: SQLite in the data dir. postgresql+asyncpg://… for shared storage.
    database_url: str | None = None
    # Store prompt and output text in the ledger (never for ZDR keys).
    log_content: bool = False
    # Accept the admin key on inference endpoints too.
    admin_can_infer: bool = False
    # Shared rate limits across replicas; None: limits are per process.
    redis_url: str | None = None
    # When Redis is unreachable: "open" serves without limits, "closed" answers 503.
    redis_failure_policy: Literal["open", "closed"] = "open"
    # Encrypts apps' own provider keys at rest; BYOK is off without it.
    secret_key: str | None = None
    # How long the ledger writer waits to gather a batch after the first queued row.
    ledger_batch_delay_s: float = 0.05
    # Load kind "local" models (off for gateways that only proxy, e.g. benchmarks).
    load_local_models: bool = Field(default=True, validation_alias="MODELYARD_LOAD_LOCAL")
    # Create an app "default" with the embedded model attached on the first start.
    bootstrap_app: bool = True
    # Open connections per upstream origin (host and port); more callers queue.
    upstream_max_connections: int = 100
    # Unknown API keys remembered (LRU), and failed key lookups per client per minute (0: off).
    auth_unknown_keys_cached: int = 10_000
    auth_failures_per_minute: int = 60
    # Image URLs allowed although not public ("cdn.internal,10.1.0.0/16"), and http:// ones.
    image_url_allow: str = ""
    image_url_allow_http: bool = False
    # How long an admin's browser session lasts after signing in.
    admin_session_ttl_s: float = 12 * 3600
    # Keep Responses API responses (`store`, `previous_response_id`), and for how long.
    store_responses: bool = True
    response_retention_days: Annotated[float, Field(gt=0)] = 30.0

    @field_validator("redis_failure_policy", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """The settings from the environment, `overrides` (None: not given) winning.

        A malformed value is a SettingsError (a ValueError) naming its variable, one line each.
        """
        given = {name: value for name, value in overrides.items() if value is not None}
        try:
            return cls(**given)  # type: ignore[arg-type]
        except ValidationError as exc:
            raise SettingsError(_one_line(exc)) from None

    @property
    def base_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"


class SettingsError(ValueError):
    """A MODELYARD_* variable (or a flag) has a value the gateway cannot use."""


def _one_line(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        # A renamed field is reported by its variable's name already.
        field = str(error["loc"][0]) if error["loc"] else "?"
        variable = field if field.startswith("MODELYARD_") else _VARIABLES.get(field, field)
        problems.append(f"{variable}: {error['msg']} (got {error.get('input')!r})")
    return "; ".join(problems)


def _variable(name: str, info: FieldInfo) -> str:
    alias = info.validation_alias
    return alias if isinstance(alias, str) else f"MODELYARD_{name.upper()}"


# Field name → the environment variable it is read from.
_VARIABLES = {name: _variable(name, info) for name, info in Settings.model_fields.items()}


class AdminKey(NamedTuple):
    value: str
    # Made on this start: the one start whose banner may show it in full.
    created: bool


def ensure_data_dir(path: Path) -> None:
    """The data dir holds key hashes, sealed provider keys and the ledger: the operator's only."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    # A dir owned by someone else (a mounted volume) keeps its mode; the files stay 0600.
    with contextlib.suppress(PermissionError):
        path.chmod(0o700)


def write_private(path: Path, text: str) -> None:
    """Write a file that is 0600 from its first byte (not chmod-ed after being readable)."""
    ensure_data_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(text)
    path.chmod(0o600)  # an existing file keeps its mode through O_CREAT


def ensure_admin_key(settings: Settings) -> AdminKey:
    """The admin key: from the settings, else the one kept in the data dir, else a new one."""
    if settings.admin_key:
        return AdminKey(settings.admin_key, created=False)
    path = settings.data_dir / ADMIN_KEY_FILE
    if path.is_file():
        key = path.read_text().strip()
        if key:
            return AdminKey(key, created=False)
    key = ADMIN_KEY_PREFIX + secrets.token_urlsafe(32)
    write_private(path, key + "\n")
    return AdminKey(key, created=True)
