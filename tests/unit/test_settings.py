"""Settings: typed parsing of MODELYARD_* (and .env), and a bad value named in one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelyard.config import Settings, SettingsError


def test_variables_are_typed_and_renamed_ones_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELYARD_PORT", "9001")
    monkeypatch.setenv("MODELYARD_LOAD_LOCAL", "off")
    monkeypatch.setenv("MODELYARD_CATALOG", "")  # empty: as if unset
    monkeypatch.setenv("MODELYARD_REDIS_FAILURE_POLICY", " Closed ")
    settings = Settings.from_env(host="0.0.0.0", data_dir=None)
    assert settings.port == 9001 and settings.host == "0.0.0.0"
    assert settings.load_local_models is False and settings.catalog_file is None
    assert settings.redis_failure_policy == "closed"
    assert settings.data_dir == Path(".modelyard")  # None: not given


def test_a_dot_env_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODELYARD_MAX_CONNECTIONS", raising=False)
    (tmp_path / ".env").write_text("MODELYARD_MAX_CONNECTIONS=77\n")
    monkeypatch.chdir(tmp_path)
    assert Settings.from_env().max_connections == 77


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MODELYARD_PORT", "eighty"),
        ("MODELYARD_LOAD_LOCAL", "perhaps"),
        ("MODELYARD_REDIS_FAILURE_POLICY", "sometimes"),
        ("MODELYARD_LEDGER_BATCH_DELAY_S", "soon"),
    ],
)
def test_a_malformed_value_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        Settings.from_env()
    message = str(caught.value)
    assert message.startswith(f"{variable}: ") and repr(value) in message
    assert "\n" not in message


def test_serve_refuses_a_bad_setting_with_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "MODELYARD_PORT": "eighty", "MODELYARD_DATA_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "modelyard", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert lines == [lines[0]] and "MODELYARD_PORT" in lines[0] and "Traceback" not in lines[0]
