"""npm tools in end-to-end tests: pinned packages, each installed into a folder of its own;
running a CLI in an environment built from nothing; the gateway they talk to, serving one
model from a fake upstream.

`ensure_npm_tool` installs `package@version` with `npm install --prefix` under
tests/.npm-tools/<package>@<version>/ (never globally, never into the user's tools) and
reuses it on later runs. An exclusive file lock makes parallel test processes (xdist
workers, two pytest runs) wait for one install instead of racing npm over one folder.
Missing node/npm or a failed install fails the test with the reason: a skipped client
test would read as a passing one.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests.e2e.server import RunningGateway, start_gateway

TOOLS_DIR = Path(__file__).resolve().parents[1] / ".npm-tools"
# Under pytest-timeout's 300 s per test (fixture setup counts), so a slow registry
# fails with npm's own words rather than a bare timeout.
INSTALL_TIMEOUT_S = 240
MARKER = ".modelyard-installed"
Json = dict[str, Any]


def tool_dir(package: str, version: str) -> Path:
    return TOOLS_DIR / f"{package}@{version}"


def ensure_npm_tool(package: str, version: str, bin_name: str | None) -> Path:
    """The path of `bin_name` from `package@version`, installing it first if needed.

    With `bin_name` None (a library, such as an SDK used from a node script) it is the
    package's own folder under node_modules.
    """
    folder = tool_dir(package, version)
    target = _target(folder, package, bin_name)
    if _installed(folder, version, target):
        return target
    npm = shutil.which("npm")
    if shutil.which("node") is None or npm is None:
        pytest.fail(
            f"{package}@{version} is needed, but node and npm are not both on PATH "
            f"(PATH={os.environ.get('PATH', '')}). Install Node.js (it brings npm)."
        )
    with _locked(folder):
        if _installed(folder, version, target):  # another process installed it meanwhile
            return target
        if folder.exists():  # a run that died halfway: start clean
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        _npm_install(npm, folder, package, version)
        if not target.exists():
            pytest.fail(
                f"npm installed {package}@{version} into {folder}, "
                f"but {target.relative_to(folder)} is not there."
            )
        (folder / MARKER).write_text(version + "\n")
    return target


def _target(folder: Path, package: str, bin_name: str | None) -> Path:
    modules = folder / "node_modules"
    return modules / ".bin" / bin_name if bin_name else modules / package


def _installed(folder: Path, version: str, target: Path) -> bool:
    marker = folder / MARKER
    return marker.is_file() and marker.read_text().strip() == version and target.exists()


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    TOOLS_DIR.mkdir(parents=True, exist_ok=True)
    lock_path = folder.with_name(folder.name + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _npm_install(npm: str, folder: Path, package: str, version: str) -> None:
    # The folder's own package.json keeps npm from walking up to a parent project's.
    (folder / "package.json").write_text('{"private": true}\n')
    command = [npm, "install", "--prefix", str(folder), "--save-exact"]
    command += ["--no-audit", "--no-fund", "--no-update-notifier", f"{package}@{version}"]
    try:
        done = subprocess.run(
            command,
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as timeout:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.fail(f"`{' '.join(command)}` did not finish in {timeout.timeout:.0f} s.")
    if done.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.fail(
            f"`{' '.join(command)}` exited {done.returncode}:\n"
            f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
        )


def installed_cli(tool: tuple[str, str, str], version_ok: Callable[[str], bool]) -> Path:
    """The CLI's path, once its `--version` output passes `version_ok`: an npm package's bin
    can be a stub until its native binary is in place (a postinstall step, or a platform
    package), which would fail every test with something less plain."""
    path = ensure_npm_tool(*tool)
    done = subprocess.run(
        [str(path), "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0 or not version_ok(done.stdout):
        pytest.fail(f"{path} --version gave {done.returncode}: {done.stdout}{done.stderr}")
    return path


def clean_env(**variables: str) -> dict[str, str]:
    """An environment of PATH and `variables` alone, so the user's own keys, config and
    proxies play no part."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **variables}


def fresh_home(workdir: Path, **variables: str) -> tuple[dict[str, str], Path]:
    """A clean environment whose HOME and TMPDIR are new folders under `workdir`, and a new
    working folder there (so no project file of the user's is found either)."""
    home, project = workdir / "home", workdir / "project"
    home.mkdir()
    project.mkdir()
    return clean_env(HOME=str(home), TMPDIR=str(workdir), **variables), project


@dataclass
class ToolRun:
    """A CLI run that printed JSON events, one a line."""

    returncode: int
    events: list[Json]
    stdout: str
    stderr: str

    def event(self, kind: str) -> Json:
        found = [e for e in self.events if e.get("type") == kind]
        assert len(found) == 1, f"{len(found)} {kind!r} events in:\n{self.stdout}"
        return found[0]


R = TypeVar("R", bound=ToolRun)


def run_json_lines(
    command: list[str], *, cwd: Path, env: dict[str, str], timeout_s: float, run: type[R]
) -> R:
    """Run the CLI to the end (stdin closed) and read the JSON lines it printed."""
    try:
        done = subprocess.run(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as expired:
        shown = " ".join([Path(command[0]).name, *command[1:2]])
        pytest.fail(f"{shown} did not finish in {timeout_s:.0f} s: {expired.stdout!r}")
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return run(done.returncode, events, done.stdout, done.stderr)


def text_of(content: Any) -> str:
    """The text of a chat message's content, a string or a list of parts."""
    if isinstance(content, str):
        return content
    return " ".join(part.get("text", "") for part in content or [] if part.get("type") == "text")


def one_model_catalog(
    upstream_url: str,
    model: str,
    upstream_model: str,
    price: tuple[Decimal, Decimal],
    provider: dict[str, str] | None = None,
    **model_fields: str | int,
) -> str:
    """A catalog of one model, served by the OpenAI-kind upstream at `upstream_url` for
    `price` (USD per million prompt and completion tokens)."""
    providers = {"id": "fake-openai", **(provider or {}), "kind": "openai"}
    providers["base_url"] = upstream_url
    endpoint = {"provider": "fake-openai", "upstream_model": upstream_model}
    prompt, completion = price
    return (
        f"[[providers]]\n{_toml(providers)}\n\n"
        f"[[models]]\n{_toml({'id': model, **model_fields})}\n\n"
        f"[[models.endpoints]]\n{_toml(endpoint)}\n"
        f"price = {{ prompt = {prompt}, completion = {completion} }}\n"
    )


def _toml(fields: dict[str, str | int]) -> str:
    # A JSON string is a TOML basic string for the plain text used here.
    return "\n".join(f"{key} = {json.dumps(value)}" for key, value in fields.items())


@contextmanager
def catalog_gateway(home: Path, catalog: str) -> Iterator[RunningGateway]:
    """A gateway serving `catalog` and no embedded model, its data under `home`."""
    path = home / "catalog.toml"
    path.write_text(catalog)
    running = start_gateway(
        home / "data", extra_args=["--catalog", str(path)], env={"MODELYARD_LOAD_LOCAL": "0"}
    )
    try:
        yield running
    finally:
        running.stop()


def admin(gw: RunningGateway, method: str, path: str, body: Any = None, status: int = 200) -> Any:
    headers = {"Authorization": f"Bearer {gw.admin_key}"}
    response = httpx.request(
        method, f"{gw.base_url}/admin{path}", json=body, headers=headers, timeout=30
    )
    assert response.status_code == status, response.text
    return response.json()


def new_app_key(gw: RunningGateway, app: str, model: str, alias: str) -> str:
    """A new app with `model` attached, so its usage is its own; the model's key."""
    admin(gw, "POST", "/apps", {"name": app}, status=201)
    attached = admin(gw, "POST", f"/apps/{app}/models", {"model": model, "alias": alias}, 201)
    return str(attached["config"][f"{alias}_KEY"])
