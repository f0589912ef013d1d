"""Errors of the Responses decoder in OpenAI's words, with `param` as OpenAI writes it
("input[2].call_id"), and the 400 for what the gateway accepts but cannot do."""

from __future__ import annotations

from typing import Any

from modelyard.errors import InvalidRequest
from modelyard.schema import decoding
from modelyard.schema.chat import validation_error
from modelyard.schema.decoding import T


def convert(value: Any, kind: type[T], where: str = "") -> T:
    return decoding.convert(value, kind, where, validation_error)


def error(param: str, message: str) -> InvalidRequest:
    return InvalidRequest(message, param=param)


def unsupported(param: str, what: str, instead: str = "") -> InvalidRequest:
    """A 400 such as: Invalid value for 'tools[0].type': 'web_search' tools are not
    supported by this gateway; only 'function' tools are (`instead` after the semicolon)."""
    tail = f"; {instead}" if instead else ""
    return error(param, f"Invalid value for '{param}': {what} not supported by this gateway{tail}.")
