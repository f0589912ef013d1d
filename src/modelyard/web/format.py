"""Number formatting for the pages (Jinja filters)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal


def compact(value: float) -> str:
    """12345 → 12.3K, 2500000 → 2.5M."""
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= size:
            return f"{value / size:.1f}".rstrip("0").rstrip(".") + suffix
    return f"{value:,.0f}" if value == int(value) else f"{value:.2f}"


def usd_per_million(per_million: float | None) -> str:
    if per_million is None:
        return "—"
    if per_million == 0:
        return "Free"
    return f"${per_million:,.2f}"


def usd(amount: Decimal | float) -> str:
    value = float(amount)
    if value == 0:
        return "$0"
    return f"${value:,.4f}" if value < 1 else f"${value:,.2f}"


def percent(share: float | None) -> str:
    return "—" if share is None else f"{share:.1%}".replace(".0%", "%")


def millis(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value / 1000:.2f}s" if value >= 1000 else f"{value:.0f}ms"


def rate(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} tok/s"


def day(when: datetime | None) -> str:
    return "—" if when is None else when.astimezone(UTC).strftime("%b %d, %Y")


def number(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f}" if value == int(value) else f"{value:g}"


FILTERS = {
    "compact": compact,
    "usd_m": usd_per_million,
    "usd": usd,
    "percent": percent,
    "millis": millis,
    "rate": rate,
    "day": day,
    "number": number,
}
