"""A throwaway PostgreSQL database on the machine's server, one per test module."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

PG = [
    "psql",
    "-h",
    "127.0.0.1",
    "-p",
    "5432",
    "-U",
    "postgres",
    "-d",
    "test",
    "-v",
    "ON_ERROR_STOP=1",
    "-q",
    "-c",
]


@contextmanager
def fresh_database() -> Iterator[str]:
    """Yields an asyncpg URL of a new, empty database, dropped afterwards."""
    name = f"modelyard_e2e_{secrets.token_hex(4)}"
    result = subprocess.run([*PG, f"CREATE DATABASE {name}"], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(
            f"PostgreSQL on 127.0.0.1:5432 is needed for this test: {result.stderr.strip()}"
        )
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        subprocess.run([*PG, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], capture_output=True)
