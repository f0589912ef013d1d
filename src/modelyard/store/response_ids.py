"""Response ids that say when they were made: `resp_` + 12 hex digits of the Unix time in
milliseconds + 36 random hex digits.

The time lets a replica that does not find a response tell "not written yet" (made a
moment ago by another process, still in its write queue) from "does not exist", without
asking anyone: only the first kind is worth waiting for.
"""

from __future__ import annotations

import secrets
import time

PREFIX = "resp_"
_TIME_DIGITS = 12


def new_response_id(now_s: float | None = None) -> str:
    millis = int((time.time() if now_s is None else now_s) * 1000)
    return f"{PREFIX}{millis:0{_TIME_DIGITS}x}{secrets.token_hex(18)}"


def issued_at(response_id: str) -> float | None:
    """When the id was made (Unix seconds), or None for an id not made this way."""
    digits = response_id.removeprefix(PREFIX)[:_TIME_DIGITS]
    if not response_id.startswith(PREFIX) or len(digits) < _TIME_DIGITS:
        return None
    try:
        return int(digits, 16) / 1000
    except ValueError:
        return None
