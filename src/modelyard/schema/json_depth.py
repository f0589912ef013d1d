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
_STRUCTURE = b'"[]{}'
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in _STRUCTURE)
# '"' → 0, openers → 1, closers → -1, once read as int8 less one.
_AS_STEP = bytes.maketrans(_STRUCTURE, bytes([1, 2, 0, 2, 0]))
_KEY_BEFORE = re.compile(rb'"([^"]{1,64})"\s*:\s*$')
_TOKEN = re.compile(rb'"[^"]*"|[\[\]{},:]')
# How far into a too-deep field its path is followed (then the field's name is enough),
# and how many of its first steps the path names ("tools[3].function.parameters").
_PATH_TOKENS = 100_000
_PATH_STEPS = 3


def check_depth(body: bytes, *, limit: int = MAX_DEPTH, param: str | None = None) -> None:
    """400 if `body` nests deeper than `limit`, naming `param` or else the top-level field."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return
    text = body.replace(b"\\\\", b"").replace(b'\\"', b"") if b"\\" in body else body
    # Quotes and brackets only, a few per cent of a typical body; strings without brackets
    # are then adjacent quotes, and dropping a pair of them moves no bracket in or out of a
    # string (every later position keeps the parity of the quotes before it).
    if _max_depth(text.translate(None, _NOT_STRUCTURE).replace(b'""', b"")) <= limit:
        return
    where = param or _where(text, limit)
    subject = f"'{where}'" if where else "The request body"
    raise InvalidRequest(
        f"{subject} nests JSON more than {limit} levels deep, deeper than this gateway accepts.",
        param=where,
    )


def _max_depth(structure: bytes) -> int:
    deepest = depth = 0
    in_string = False
    for start in range(0, len(structure), _CHUNK):
        piece = structure[start : start + _CHUNK]
        steps = np.frombuffer(piece.translate(_AS_STEP), np.int8) - 1
        if in_string or b'"' in piece:
            inside = np.bitwise_xor.accumulate(steps == 0) ^ in_string
            in_string = bool(inside[-1])
            steps[inside] = 0
        depths = np.cumsum(steps, dtype=np.int64) + depth
        deepest = max(deepest, int(depths.max()))
        depth = int(depths[-1])
    return deepest


def _top_open_before_too_deep(text: bytes, limit: int) -> int:
    """Where the top-level field that goes past `limit` opens (-1: the body itself)."""
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
            return top_open
        in_string = int(quotes[-1]) & 1
        depth = int(depths[-1])
    return top_open


def _top_level_key(text: bytes, at: int) -> str | None:
    if at < 0:
        return None
    found = _KEY_BEFORE.search(text, max(0, at - 256), at)
    return found.group(1).decode("utf-8", "replace") if found else None


def _where(text: bytes, limit: int) -> str | None:
    """The path to the too-deep value: its top-level field, and its first few steps in."""
    top_open = _top_open_before_too_deep(text, limit)
    field = _top_level_key(text, top_open)
    if field is None:
        return None
    steps: list[str] = []  # per open container: "[i]" or ".key"
    expecting_key = False
    for count, token in enumerate(_TOKEN.finditer(text, top_open)):
        kind = token.group()[:1]
        if kind in (b"{", b"["):
            steps.append("[0]" if kind == b"[" else "")
            expecting_key = kind == b"{"
        elif kind in (b"}", b"]"):
            steps.pop()
            expecting_key = False
        elif kind == b",":
            if steps and steps[-1].startswith("["):
                steps[-1] = f"[{int(steps[-1][1:-1]) + 1}]"
            else:
                expecting_key = True
        elif kind == b":":
            expecting_key = False
        elif expecting_key and steps:
            steps[-1] = "." + token.group()[1:-1].decode("utf-8", "replace")
        if not steps or count > _PATH_TOKENS:
            return field
        if len(steps) >= limit:
            named = steps[:_PATH_STEPS]
            while named and named[-1].startswith("["):  # "junk", not "junk[0][0][0]"
                named.pop()
            return field + "".join(named)
    return field
