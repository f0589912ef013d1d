"""Settings: the one typed place that reads MODELYARD_* environment variables and flags."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

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
        if "MODELYARD_KEEPALIVE_INTERVAL_S" in env:
            values["keepalive_interval_s"] = float(env["MODELYARD_KEEPALIVE_INTERVAL_S"])
        if env.get("MODELYARD_DATABASE_URL"):
            values["database_url"] = env["MODELYARD_DATABASE_URL"]
        for name, flag in (
            ("log_content", "MODELYARD_LOG_CONTENT"),
            ("admin_can_infer", "MODELYARD_ADMIN_CAN_INFER"),
            ("bootstrap_app", "MODELYARD_BOOTSTRAP_APP"),
            ("load_local_models", "MODELYARD_LOAD_LOCAL"),
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
        if "MODELYARD_PUBLIC_URL" in env:
            values["public_url"] = env["MODELYARD_PUBLIC_URL"]
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]

    @property
    def base_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"


def ensure_admin_key(settings: Settings) -> str:
    """The admin key: from the settings, else the one kept in the data dir, else a new one."""
    if settings.admin_key:
        return settings.admin_key
    path = settings.data_dir / ADMIN_KEY_FILE
    if path.is_file():
        key = path.read_text().strip()
        if key:
            return key
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    key = ADMIN_KEY_PREFIX + secrets.token_urlsafe(32)
    path.write_text(key + "\n")
    path.chmod(0o600)
    return key
