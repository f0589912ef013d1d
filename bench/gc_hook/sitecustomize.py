"""Loaded by a gateway started with this folder on PYTHONPATH (bench/gc_pauses.py): logs
every garbage collection of generation 1 and 2 to $BENCH_GC_LOG as `generation ms`."""

import gc
import os
import time

_path = os.environ.get("BENCH_GC_LOG")
if _path:
    _log = open(_path, "a", buffering=1)  # noqa: SIM115 (open for the process's lifetime)
    _started = [0.0]

    def _on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            _started[0] = time.perf_counter()
        elif info["generation"] >= 1:
            elapsed_ms = (time.perf_counter() - _started[0]) * 1000
            _log.write(f"{info['generation']} {elapsed_ms:.2f}\n")

    gc.callbacks.append(_on_gc)
