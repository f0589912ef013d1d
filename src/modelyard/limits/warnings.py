"""A warning logged at most once per interval: a Redis that is away fails every request,
and the log should get one line per 10 s, not one per request."""

from __future__ import annotations

import logging
import time


class OccasionalWarning:
    def __init__(self, logger: logging.Logger, every_s: float = 10.0) -> None:
        self._logger = logger
        self._every_s = every_s
        self._last = float("-inf")

    def __call__(self, message: str) -> None:
        now = time.monotonic()
        if now - self._last > self._every_s:
            self._last = now
            self._logger.warning(message)
