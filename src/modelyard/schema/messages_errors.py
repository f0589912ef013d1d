"""Errors of the Messages decoder in Anthropic's words: `<path>: <what is wrong>` with a
dotted path (`messages.0.content.1.source.media_type: ...`), and `param` that same path."""

from __future__ import annotations

from typing import Any

import msgspec

from modelyard.errors import InvalidRequest
from modelyard.schema import decoding
from modelyard.schema.decoding import T


def convert(value: Any, kind: type[T], where: str = "") -> T:
    return decoding.convert(value, kind, where, invalid)


def invalid(exc: msgspec.ValidationError, where: str) -> InvalidRequest:
    """msgspec's "Expected `int`, got `str` - at `$.messages[0].role`" in Anthropic's words."""
    message, sep, at = str(exc).rpartition(" - at `$")
    if not sep:
        message, at = str(exc), ""
    path = _join(where, _dotted(at.rstrip("`")))
    if message.startswith("Object missing required field"):
        path = _join(path, message.split("`")[1])
        message = "Field required"
    if not path:
        return InvalidRequest(f"The request body is invalid: {message}.")
    return InvalidRequest(f"{path}: {message}", param=path)


def error(path: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"{path}: {message}", param=path)


def _dotted(msgspec_path: str) -> str:
    """`.messages[0].content[1]` → `messages.0.content.1`; "[...]" (a dict key) is dropped."""
    path = msgspec_path.replace("[...]", "").replace("[", ".").replace("]", "")
    return path.lstrip(".")


def _join(*steps: str) -> str:
    return ".".join(step for step in steps if step)
