"""Server-rendered SVG charts: plain markup, no script, scaled by the browser."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date

from markupsafe import Markup, escape

from modelyard.web.format import compact


def _with_unit(unit: str) -> Callable[[int], str]:
    return lambda value: f"{compact(value)} {unit}"


def bar_chart(
    points: Sequence[tuple[date, int]],
    unit: str,
    *,
    width: int = 600,
    height: int = 160,
    label: Callable[[int], str] | None = None,
) -> Markup:
    """Daily bars with a max label and first/last day labels; `label` formats a value."""
    label = label or _with_unit(unit)
    top, bottom = 18, 20
    plot = height - top - bottom
    peak = max((v for _, v in points), default=0)
    slot = width / max(len(points), 1)
    bars = []
    for i, (day, value) in enumerate(points):
        h = plot * value / peak if peak else 0
        y = top + plot - h
        title = escape(f"{day.isoformat()}: {label(value)}")
        bars.append(
            f'<rect class="bar" x="{i * slot + 1:.1f}" y="{y:.1f}" width="{slot - 2:.1f}" '
            f'height="{max(h, 0.5 if value else 0):.1f}"><title>{title}</title></rect>'
        )
    labels = ""
    if points:
        first, last = points[0][0].strftime("%b %d"), points[-1][0].strftime("%b %d")
        labels = (
            f'<text x="0" y="{height - 4}" class="axis">{first}</text>'
            f'<text x="{width}" y="{height - 4}" class="axis" text-anchor="end">{last}</text>'
        )
    return Markup(
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(unit)} per day">'
        f'<line class="base" x1="0" x2="{width}" y1="{top + plot}" y2="{top + plot}"/>'
        f'<text x="0" y="11" class="axis">max {escape(label(peak))}</text>'
        f"{''.join(bars)}{labels}</svg>"
    )


def _uptime_class(share: float | None) -> str:
    if share is None:
        return "none"
    if share >= 0.99:
        return "good"
    return "fair" if share >= 0.9 else "bad"


def uptime_strip(shares: Sequence[float | None], labels: Sequence[str]) -> Markup:
    """One cell per hour, coloured by that hour's uptime (grey: no requests)."""
    width, height = 480, 28
    slot = width / max(len(shares), 1)
    cells = []
    for i, (share, label) in enumerate(zip(shares, labels, strict=True)):
        text = "no requests" if share is None else f"{share:.1%} up"
        cells.append(
            f'<rect class="up-{_uptime_class(share)}" x="{i * slot + 1:.1f}" y="0" '
            f'width="{slot - 2:.1f}" height="{height}" rx="2">'
            f"<title>{escape(label)}:00 UTC: {text}</title></rect>"
        )
    return Markup(
        f'<svg class="strip" viewBox="0 0 {width} {height}" preserveAspectRatio="none" '
        'role="img" '
        f'aria-label="uptime per hour">{"".join(cells)}</svg>'
    )
