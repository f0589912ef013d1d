"""What the Messages and Responses decoders share: field types, validation of a piece of
the body, the check of a message's parts against its role, and a tool result's split into
the text a tool message holds and the media that follow it in a user message."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Annotated, Any, TypeVar

import msgspec

from modelyard.errors import InvalidRequest
from modelyard.schema.chat import Part, TextPart

NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]
T = TypeVar("T")
A_ROLE = {
    "user": "a user",
    "system": "a system",
    "developer": "a developer",
    "assistant": "an assistant",
}


def convert(
    value: Any,
    kind: type[T],
    where: str,
    error: Callable[[msgspec.ValidationError, str], InvalidRequest],
) -> T:
    """`value` (a piece of the body at `where`) as `kind`, or `error`'s 400."""
    try:
        return msgspec.convert(value, kind)
    except msgspec.ValidationError as exc:
        raise error(exc, where) from exc


def disallowed_kind(part: msgspec.Struct, allowed: tuple[type, ...]) -> str | None:
    """The `type` of a part that a message of its role may not hold, or None."""
    return None if isinstance(part, allowed) else str(type(part).__struct_config__.tag)


def text_and_media(parts: Iterable[Part]) -> tuple[str | list[Part], list[Part]]:
    """A tool result's text parts ("" for none), and its images and files."""
    text: list[Part] = []
    media: list[Part] = []
    for part in parts:
        (text if isinstance(part, TextPart) else media).append(part)
    return (text or ""), media
