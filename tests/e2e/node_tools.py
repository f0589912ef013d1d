"""Pinned npm packages for end-to-end tests, each installed into a folder of its own.

`ensure_npm_tool` installs `package@version` with `npm install --prefix` under
tests/.npm-tools/<package>@<version>/ (never globally, never into the user's tools) and
reuses it on later runs. An exclusive file lock makes parallel test processes (xdist
workers, two pytest runs) wait for one install instead of racing npm over one folder.
Missing node/npm or a failed install fails the test with the reason: a skipped client
test would read as a passing one.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

TOOLS_DIR = Path(__file__).resolve().parents[1] / ".npm-tools"
# Under pytest-timeout's 300 s per test (fixture setup counts), so a slow registry
# fails with npm's own words rather than a bare timeout.
INSTALL_TIMEOUT_S = 240
MARKER = ".modelyard-installed"


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
