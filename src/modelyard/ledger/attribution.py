"""The caller's self-description (X-Title, HTTP-Referer), cut to a size fit for the ledger.

Both headers are stored on every ledger row and shown on the public model pages, so a
client must not be able to make them large or put control characters into them.
"""

from __future__ import annotations

from itertools import islice

# OpenRouter shows short app names; a referer is a URL and may be a little longer.
MAX_TITLE_CHARS = 128
MAX_REFERER_CHARS = 512


def clean_attribution(
    http_referer: str | None, x_title: str | None
) -> tuple[str | None, str | None]:
    """(referer, title) truncated, whitespace as plain spaces, other control characters gone."""
    return _clean(http_referer, MAX_REFERER_CHARS), _clean(x_title, MAX_TITLE_CHARS)


def _clean(value: str | None, limit: int) -> str | None:
    if not value:
        return None
    # Lazy: a megabyte header costs only as many characters as it takes to fill `limit`.
    kept = (
        " " if char.isspace() else char for char in value if char.isprintable() or char.isspace()
    )
    cleaned = "".join(islice(kept, limit)).strip()
    return cleaned or None
