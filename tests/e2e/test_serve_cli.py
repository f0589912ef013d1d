"""`modelyard serve` refuses bad configuration with one clear line and exit code 1."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def serve(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "modelyard",
            "serve",
            "--port",
            "1",
            "--data-dir",
            str(tmp_path),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )


@pytest.mark.parametrize(
    ("catalog", "expected"),
    [
        ("[[models]\n", "not valid TOML"),
        ('[[providers]]\nid = "x"\nkind = "carrier-pigeon"\n', "providers[0] (id 'x'): kind"),
    ],
)
def test_bad_catalog_is_named_with_file_and_field(
    tmp_path: Path, catalog: str, expected: str
) -> None:
    path = tmp_path / "ops.toml"
    path.write_text(catalog)
    result = serve(tmp_path, "--catalog", str(path))
    assert result.returncode == 1
    assert str(path) in result.stderr and expected in result.stderr
    assert "Traceback" not in result.stderr


def test_short_secret_key_is_refused(tmp_path: Path) -> None:
    result = serve(tmp_path, MODELYARD_SECRET_KEY="short")
    assert result.returncode == 1 and "at least 16 characters" in result.stderr
