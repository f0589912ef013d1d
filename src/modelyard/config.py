"""Settings: the one typed place that reads MODELYARD_* environment variables and flags."""

from __future__ import annotations

import contextlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

ADMIN_KEY_FILE = "admin_key"
ADMIN_KEY_PREFIX = "my-admin-"


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path(".modelyard")
    catalog_file: Path | None = None
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
    redis_failure_policy: str = "open"
    # Encrypts apps' own provider keys at rest; BYOK is off without it.
    secret_key: str | None = None
    # How long the ledger writer waits to gather a batch after the first queued row.
    ledger_batch_delay_s: float = 0.05
    # Load kind "local" models (off for gateways that only proxy, e.g. benchmarks).
    load_local_models: bool = True
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
    response_retention_days: float = 30.0

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        env = os.environ
        values: dict[str, object] = {}
        if "MODELYARD_HOST" in env:
            values["host"] = env["MODELYARD_HOST"]
        if "MODELYARD_PORT" in env:
            values["port"] = int(env["MODELYARD_PORT"])
        if "MODELYARD_DATA_DIR" in env:
            values["data_dir"] = Path(env["MODELYARD_DATA_DIR"])
        if env.get("MODELYARD_CATALOG"):
            values["catalog_file"] = Path(env["MODELYARD_CATALOG"])
        if env.get("MODELYARD_ADMIN_KEY"):
            values["admin_key"] = env["MODELYARD_ADMIN_KEY"]
        if "MODELYARD_MAX_BODY_BYTES" in env:
            values["max_body_bytes"] = int(env["MODELYARD_MAX_BODY_BYTES"])
        for name, var, kind in (
            ("max_header_bytes", "MODELYARD_MAX_HEADER_BYTES", int),
            ("header_timeout_s", "MODELYARD_HEADER_TIMEOUT_S", float),
            ("body_timeout_s", "MODELYARD_BODY_TIMEOUT_S", float),
            ("linger_s", "MODELYARD_LINGER_S", float),
            ("max_connections", "MODELYARD_MAX_CONNECTIONS", int),
        ):
            if var in env:
                values[name] = kind(env[var])
        if "MODELYARD_KEEPALIVE_INTERVAL_S" in env:
            values["keepalive_interval_s"] = float(env["MODELYARD_KEEPALIVE_INTERVAL_S"])
        if env.get("MODELYARD_DATABASE_URL"):
            values["database_url"] = env["MODELYARD_DATABASE_URL"]
        for name, flag in (
            ("log_content", "MODELYARD_LOG_CONTENT"),
            ("admin_can_infer", "MODELYARD_ADMIN_CAN_INFER"),
            ("bootstrap_app", "MODELYARD_BOOTSTRAP_APP"),
            ("load_local_models", "MODELYARD_LOAD_LOCAL"),
            ("image_url_allow_http", "MODELYARD_IMAGE_URL_ALLOW_HTTP"),
            ("store_responses", "MODELYARD_STORE_RESPONSES"),
        ):
            if flag in env:
                values[name] = env[flag].strip().lower() in ("1", "true", "yes", "on")
        if "MODELYARD_LEDGER_BATCH_DELAY_S" in env:
            values["ledger_batch_delay_s"] = float(env["MODELYARD_LEDGER_BATCH_DELAY_S"])
        if env.get("MODELYARD_REDIS_URL"):
            values["redis_url"] = env["MODELYARD_REDIS_URL"]
        if env.get("MODELYARD_REDIS_FAILURE_POLICY"):
            policy = env["MODELYARD_REDIS_FAILURE_POLICY"].strip().lower()
            if policy not in ("open", "closed"):
                raise ValueError("MODELYARD_REDIS_FAILURE_POLICY must be 'open' or 'closed'")
            values["redis_failure_policy"] = policy
        if env.get("MODELYARD_SECRET_KEY"):
            values["secret_key"] = env["MODELYARD_SECRET_KEY"]
        if "MODELYARD_UPSTREAM_MAX_CONNECTIONS" in env:
            values["upstream_max_connections"] = int(env["MODELYARD_UPSTREAM_MAX_CONNECTIONS"])
        if "MODELYARD_AUTH_UNKNOWN_KEYS_CACHED" in env:
            values["auth_unknown_keys_cached"] = int(env["MODELYARD_AUTH_UNKNOWN_KEYS_CACHED"])
        if "MODELYARD_AUTH_FAILURES_PER_MINUTE" in env:
            values["auth_failures_per_minute"] = int(env["MODELYARD_AUTH_FAILURES_PER_MINUTE"])
        if "MODELYARD_IMAGE_URL_ALLOW" in env:
            values["image_url_allow"] = env["MODELYARD_IMAGE_URL_ALLOW"]
        if "MODELYARD_PUBLIC_URL" in env:
            values["public_url"] = env["MODELYARD_PUBLIC_URL"]
        if "MODELYARD_ADMIN_SESSION_TTL_S" in env:
            values["admin_session_ttl_s"] = float(env["MODELYARD_ADMIN_SESSION_TTL_S"])
        if "MODELYARD_RESPONSE_RETENTION_DAYS" in env:
            days = float(env["MODELYARD_RESPONSE_RETENTION_DAYS"])
            if not days > 0:  # also refuses NaN
                raise ValueError("MODELYARD_RESPONSE_RETENTION_DAYS must be more than 0")
            values["response_retention_days"] = days
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]

    @property
    def base_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"


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
