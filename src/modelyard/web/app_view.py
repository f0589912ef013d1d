"""What the app page shows: usage and spend per day, model and API, keys and their limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from modelyard.store import App, Store
from modelyard.web.charts import bar_chart
from modelyard.web.format import usd

DAYS = 30
# The ledger's API names as the page shows them; an unknown one is shown as stored.
API_LABELS = {
    "chat.completions": "Chat Completions",
    "messages": "Messages",
    "responses": "Responses",
}


@dataclass(slots=True)
class Totals:
    requests: int = 0
    tokens: int = 0
    cost: Decimal = field(default_factory=Decimal)


async def app_context(store: Store, app: App, now: datetime | None = None) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    first = (now - timedelta(days=DAYS - 1)).date()
    since = datetime.combine(first, datetime.min.time(), UTC)
    rows = await store.usage_by_day(app.id, since)
    days = [first + timedelta(days=n) for n in range(DAYS)]
    per_day: dict[date, Totals] = {d: Totals() for d in days}
    per_model: dict[str, Totals] = {}
    per_api: dict[str, Totals] = {}
    for r in rows:
        tokens = r.tokens_prompt + r.tokens_completion
        for totals in (
            per_day.setdefault(date.fromisoformat(r.day), Totals()),
            per_model.setdefault(r.model, Totals()),
            per_api.setdefault(r.api, Totals()),
        ):
            totals.requests += r.requests
            totals.tokens += tokens
            totals.cost += r.cost
    overall = Totals(
        sum(t.requests for t in per_model.values()),
        sum(t.tokens for t in per_model.values()),
        sum((t.cost for t in per_model.values()), Decimal(0)),
    )
    # Spend in micro-dollars so the bar chart works on integers.
    spend = [(d, int(per_day[d].cost * 1_000_000)) for d in days]
    return {
        "app": app,
        "overall": overall,
        "per_day": [(d, per_day[d]) for d in reversed(days) if per_day[d].requests],
        "per_model": sorted(per_model.items(), key=lambda kv: (-kv[1].tokens, kv[0])),
        "per_api": [
            (API_LABELS.get(api, api), t)
            for api, t in sorted(per_api.items(), key=lambda kv: (-kv[1].requests, kv[0]))
        ],
        "requests_chart": bar_chart(
            [(d, per_day[d].requests) for d in days], "requests", width=320, height=150
        ),
        "tokens_chart": bar_chart(
            [(d, per_day[d].tokens) for d in days], "tokens", width=320, height=150
        ),
        "spend_chart": bar_chart(
            spend, "USD", width=320, height=150, label=lambda v: usd(Decimal(v) / 1_000_000)
        ),
        "keys": await store.list_keys(app.id),
        "resources": await store.list_resources(app.id),
    }
