"""A fresh PostgreSQL database for one benchmark run, made and dropped with psql; and
whether Redis answers, for the scale-out rows."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator

SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432"
PSQL = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qAt", "-c"]


def redis_available() -> bool:
    """Redis on 127.0.0.1:6379, for the scale-out rows' rate limits."""
    if shutil.which("redis-cli") is None:
        return False
    probe = subprocess.run(["redis-cli", "-h", "127.0.0.1", "ping"], capture_output=True, text=True)
    return probe.stdout.strip() == "PONG"


def available() -> bool:
    if shutil.which("psql") is None:
        return False
    probe = subprocess.run([*PSQL, "select 1"], capture_output=True, text=True, timeout=10)
    return probe.returncode == 0


@contextlib.contextmanager
def fresh_database() -> Iterator[str]:
    """Yields the database URL for the gateway (MODELYARD_DATABASE_URL)."""
    name = f"modelyard_bench_{os.getpid()}"
    _psql(f"DROP DATABASE IF EXISTS {name}")
    _psql(f"CREATE DATABASE {name}")
    try:
        yield f"{SERVER}/{name}"
    finally:
        _psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _psql(sql: str) -> None:
    subprocess.run([*PSQL, sql], check=True, capture_output=True, timeout=60)
