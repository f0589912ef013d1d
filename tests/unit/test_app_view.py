"""The app page's numbers from hand-made ledger rows in a real SQLite store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from modelyard.store import Generation, Store, database_url
from modelyard.web.app_view import app_context

on_session_loop = pytest.mark.asyncio(loop_scope="session")

NOW = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(database_url(tmp_path, None))
    yield opened
    await opened.close()


def row(n: int, app_id: str, **fields: Any) -> Generation:
    values: dict[str, Any] = {
        "created_at": NOW - timedelta(hours=n),
        "key_id": None,
        "model": "a/model",
        "provider": "local",
        "endpoint": "local/a/model",
        "status": 200,
        "tokens_prompt": 10,
        "tokens_completion": 5,
    }
    return Generation(id=f"gen-{n}", app_id=app_id, **(values | fields))


@on_session_loop
async def test_requests_and_spend_are_shown_per_api(store: Store) -> None:
    app = await store.create_app("shop")
    await store.insert_generations(
        [
            row(1, app.id, api="messages", cost=Decimal("0.5")),
            row(2, app.id, api="messages", cost=Decimal("0.25"), model="b/model"),
            row(30, app.id, api="messages", cost=Decimal("0.25")),  # another day
            row(3, app.id, cost=Decimal("0.1")),
            row(4, app.id, cost=Decimal("0.1")),
            row(5, app.id, api="some.future.api"),
            row(6, "app_other", api="responses", cost=Decimal(9)),
        ]
    )
    context = await app_context(store, app, now=NOW)
    per_api = [(label, t.requests, t.tokens, t.cost) for label, t in context["per_api"]]
    assert per_api == [
        ("Messages", 3, 45, Decimal(1)),
        ("Chat Completions", 2, 30, Decimal("0.2")),
        ("some.future.api", 1, 15, Decimal(0)),
    ]
    assert context["overall"].requests == 6 and context["overall"].cost == Decimal("1.2")
    assert {model for model, _ in context["per_model"]} == {"a/model", "b/model"}


@on_session_loop
async def test_an_app_without_requests_has_no_api_rows(store: Store) -> None:
    app = await store.create_app("quiet")
    context = await app_context(store, app, now=NOW)
    assert context["per_api"] == [] and context["overall"].requests == 0
