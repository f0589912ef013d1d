"""How deep a JSON document nests, measured on its bytes before anything parses it.

msgspec, orjson, the json module and the local model's grammar builder all recurse per
level of nesting, and fail (RecursionError, or orjson's limit of 255 when re-encoding) on
documents nested a few hundred levels deep. Untyped fields (an unknown top-level field, a
tool's parameters, a json_schema) can nest arbitrarily, so the body's depth is capped
first, without recursion and in time linear in the body: escapes are dropped, then numpy
counts brackets outside strings, a megabyte at a time.
"""

from __future__ import annotations

import re

import numpy as np

from modelyard.errors import InvalidRequest

MAX_DEPTH = 128
_CHUNK = 1 << 20
_QUOTE, _OPEN, _CLOSE, _OPEN_BRACE, _CLOSE_BRACE = 34, 91, 93, 123, 125
_KEY_BEFORE = re.compile(rb'"([^"]{1,64})"\s*:\s*$')


def check_depth(body: bytes, *, limit: int = MAX_DEPTH, param: str | None = None) -> None:
    """400 if `body` nests deeper than `limit`, naming `param` or else the top-level field."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return
    text = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    at = _too_deep_at(text, limit)
    if at is None:
        return
    where = param or _top_level_key(text, at)
    subject = f"'{where}'" if where else "The request body"
    raise InvalidRequest(
        f"{subject} nests JSON more than {limit} levels deep, deeper than this gateway accepts.",
        param=where,
    )


def _too_deep_at(text: bytes, limit: int) -> int | None:
    """Where the top-level field that goes past `limit` opens; None if nothing does."""
    data = np.frombuffer(text, dtype=np.uint8)
    in_string = 0  # quotes seen so far, mod 2 (escaped ones are gone)
    depth = 0
    top_open = -1  # the last bracket that went from depth 1 to 2
    for start in range(0, len(data), _CHUNK):
        chunk = data[start : start + _CHUNK]
        quotes = np.cumsum(chunk == _QUOTE, dtype=np.int64) + in_string
        outside = (quotes & 1) == 0
        opens = ((chunk == _OPEN) | (chunk == _OPEN_BRACE)) & outside
        closes = ((chunk == _CLOSE) | (chunk == _CLOSE_BRACE)) & outside
        depths = np.cumsum(opens.astype(np.int64) - closes, dtype=np.int64) + depth
        over = np.flatnonzero(depths > limit)
        end = int(over[0]) if over.size else len(chunk)
        top = np.flatnonzero(opens[:end] & (depths[:end] == 2))
        if top.size:
            top_open = start + int(top[-1])
        if over.size:
            return max(top_open, 0)
        in_string = int(quotes[-1]) & 1
        depth = int(depths[-1])
    return None


def _top_level_key(text: bytes, at: int) -> str | None:
    found = _KEY_BEFORE.search(text, max(0, at - 256), at)
    return found.group(1).decode("utf-8", "replace") if found else None
