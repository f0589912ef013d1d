"""The Store against real databases: SQLite in a temp dir and a real PostgreSQL.

PostgreSQL runs get a database of their own per test module (created from the `test`
database, dropped afterwards), and each test starts from an empty schema, so parallel runs
do not meet. Set MODELYARD_TEST_PG_URL to use another server; an unreachable server is an
error, never a skip.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, make_url, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from modelyard.errors import Conflict, NotFound
from modelyard.store import Attempt, Generation, Store, UsageRow, database_url
from modelyard.store.bulk import SQLITE_CHUNKS, chunk_sizes
from modelyard.store.migrate import alembic_config, create_engine
from modelyard.store.rows import generation_to_row
from modelyard.store.tables import generations, metadata

# The fixtures (and the engines they open) live on the session loop; so must the tests.
on_session_loop = pytest.mark.asyncio(loop_scope="session")

PG_URL = os.environ.get(
    "MODELYARD_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
TABLES = {
    "apps",
    "model_resources",
    "api_keys",
    "generations",
    "provider_keys",
    "admin_sessions",
    "responses",
}
DAY1 = datetime(2024, 3, 1, 10, 0, tzinfo=UTC)
DAY2 = datetime(2024, 3, 2, 0, 0, tzinfo=UTC)


# -- databases ---------------------------------------------------------------------------


@asynccontextmanager
async def raw(url: str, **engine_args: Any) -> AsyncIterator[AsyncConnection]:
    """A connection of the test's own, to look at the database behind the Store's back."""
    engine = create_async_engine(url, **engine_args)
    try:
        async with engine.connect() as conn:
            yield conn
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
async def pg_database() -> AsyncIterator[str]:
    name = f"modelyard_t_{secrets.token_hex(6)}"
    problem = None
    try:
        async with raw(PG_URL, isolation_level="AUTOCOMMIT") as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
            # Far from UTC, so nothing can lean on the server's zone (days, comparisons).
            await conn.execute(text(f"ALTER DATABASE \"{name}\" SET timezone TO 'Etc/GMT-14'"))
    except Exception as exc:
        problem = exc
    if problem is not None:
        pytest.fail(
            f"PostgreSQL is unreachable at {PG_URL} ({problem!r}). These tests need a real "
            "server: start it, or point MODELYARD_TEST_PG_URL at one.",
            pytrace=False,
        )
    yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    async with raw(PG_URL, isolation_level="AUTOCOMMIT") as conn:
        await conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of the parametrised backend."""
    if request.param == "sqlite":
        return database_url(tmp_path, None)
    url: str = request.getfixturevalue("pg_database")
    request.getfixturevalue("_empty_pg_schema")
    return url


@pytest.fixture
async def _empty_pg_schema(pg_database: str) -> None:
    async with raw(pg_database, isolation_level="AUTOCOMMIT") as conn:
        await conn.execute(text("DROP SCHEMA public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    opened = await Store.open(db_url)
    yield opened
    await opened.close()


def generation(n: int, **fields: Any) -> Generation:
    defaults: dict[str, Any] = {
        "id": f"gen-{n:06d}",
        "created_at": DAY1,
        "app_id": "app_1",
        "key_id": "key_1",
        "model": "google/gemma-3-270m",
        "provider": "local",
        "endpoint": "local/gemma",
        "status": 200,
    }
    return Generation(**(defaults | fields))


# -- migrations --------------------------------------------------------------------------


def _schema(conn: Connection) -> dict[str, Any]:
    inspector = inspect(conn)
    tables = set(inspector.get_table_names())
    indexes = {t: {i["name"] for i in inspector.get_indexes(t)} for t in tables}
    uniques = {t: {u["name"] for u in inspector.get_unique_constraints(t)} for t in tables}
    drift = compare_metadata(MigrationContext.configure(conn), metadata) if tables else None
    return {"tables": tables, "indexes": indexes, "uniques": uniques, "drift": drift}


@on_session_loop
async def test_migrations_build_the_schema_from_empty_and_reopening_changes_nothing(
    db_url: str,
) -> None:
    async with raw(db_url) as conn:
        assert (await conn.run_sync(_schema))["tables"] == set()

    store = await Store.open(db_url)
    await store.create_app("kept")
    await store.close()

    async with raw(db_url) as conn:
        schema = await conn.run_sync(_schema)
        version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
    assert schema["tables"] == TABLES | {"alembic_version"}
    if db_url.startswith("sqlite"):
        async with raw(db_url) as conn:  # WAL is a property of the file, so it shows here
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
    assert version == [("0005",)]
    assert {
        "ix_generations_app_created",
        "ix_generations_key_created",
        "ix_generations_model_created",
    } <= schema["indexes"]["generations"]
    assert "ix_api_keys_key_hash" in schema["indexes"]["api_keys"]
    assert "ix_responses_expires_at" in schema["indexes"]["responses"]
    assert "uq_apps_name" in schema["uniques"]["apps"]
    assert "uq_model_resources_app_alias" in schema["uniques"]["model_resources"]
    # The hand-written migration builds exactly what tables.py declares.
    assert schema["drift"] == []

    again = await Store.open(db_url)
    try:
        assert [a.name for a in await again.list_apps()] == ["kept"]
    finally:
        await again.close()
    async with raw(db_url) as conn:
        assert (await conn.execute(text("SELECT version_num FROM alembic_version"))).all() == [
            ("0005",)
        ]


def test_default_database_url_is_an_absolute_sqlite_path(tmp_path: Path) -> None:
    relative = Path(os.path.relpath(tmp_path))
    assert database_url(relative, None) == f"sqlite+aiosqlite:///{tmp_path.resolve()}/modelyard.db"
    assert database_url(tmp_path, "postgresql+asyncpg://h/db") == "postgresql+asyncpg://h/db"


# -- apps --------------------------------------------------------------------------------


@on_session_loop
async def test_apps_are_created_found_by_name_or_id_and_listed(store: Store) -> None:
    first = await store.create_app("alpha")
    second = await store.create_app("beta")
    assert first.id.startswith("app_") and len(first.id) == 4 + 16
    assert first.created_at.utcoffset() == timedelta(0)

    assert await store.get_app("alpha") == first
    assert await store.get_app(second.id) == second
    assert await store.get_app("gamma") is None
    assert [a.name for a in await store.list_apps()] == ["alpha", "beta"]

    with pytest.raises(Conflict) as taken:
        await store.create_app("alpha")
    assert taken.value.message == "An app named 'alpha' already exists."
    assert taken.value.status == 409
    assert len(await store.list_apps()) == 2


# -- model resources ---------------------------------------------------------------------


@on_session_loop
async def test_attaching_a_model_creates_the_resource_and_its_scoped_key(store: Store) -> None:
    app = await store.create_app("shop")
    resource, key, plain = await store.attach_model(app.id, "google/gemma-3-270m", "inference")

    assert resource.id.startswith("res_") and resource.alias == "INFERENCE"
    assert (resource.app_id, resource.model_id, resource.key_id) == (
        app.id,
        "google/gemma-3-270m",
        key.id,
    )
    assert key.allowed_models == ("google/gemma-3-270m",) and key.revoked_at is None
    assert await store.key_by_plain(plain) == (key, app)
    assert await store.list_resources(app.id) == [resource]
    assert await store.list_keys(app.id) == [key]

    assert await store.find_resource(app.id, "Inference") == resource
    assert await store.find_resource(app.id, resource.id) == resource
    assert await store.find_resource(app.id, "OTHER") is None
    other = await store.create_app("other")
    assert await store.find_resource(other.id, "INFERENCE") is None

    with pytest.raises(Conflict):
        await store.attach_model(app.id, "another/model", "INFERENCE")
    # The same alias in another app is fine.
    await store.attach_model(other.id, "google/gemma-3-270m", "INFERENCE")
    with pytest.raises(NotFound):
        await store.attach_model("app_missing", "google/gemma-3-270m", "INFERENCE")
    assert len(await store.list_keys(app.id)) == 1  # the refused attach left no key behind


@on_session_loop
@pytest.mark.parametrize("remove", ["detach_resource", "destroy_resource"])
async def test_removing_a_resource_revokes_its_key_and_frees_the_alias(
    store: Store, remove: str
) -> None:
    app = await store.create_app("shop")
    resource, key, plain = await store.attach_model(app.id, "google/gemma-3-270m", "CHAT")
    kept, _, kept_plain = await store.attach_model(app.id, "google/gemma-3-270m", "OTHER")

    await getattr(store, remove)(resource.id)

    assert await store.list_resources(app.id) == [kept]
    assert await store.find_resource(app.id, "CHAT") is None
    found = await store.key_by_plain(plain)
    assert found is not None and found[0].id == key.id and found[0].revoked_at is not None
    kept_key = await store.key_by_plain(kept_plain)
    assert kept_key is not None and kept_key[0].revoked_at is None

    again, new_key, _ = await store.attach_model(app.id, "google/gemma-3-270m", "chat")
    assert again.alias == "CHAT" and again.id != resource.id and new_key.id != key.id


# -- keys --------------------------------------------------------------------------------


@on_session_loop
async def test_keys_are_created_with_their_options_found_by_plain_key_and_revoked(
    store: Store,
) -> None:
    app = await store.create_app("shop")
    key, plain = await store.create_key(
        app.id,
        label="ci",
        allowed_models=("a/one", "b/two"),
        limit_usd=Decimal("12.3456789012"),
        limit_reset="weekly",
        rpm=60,
        tpm=100_000,
        zdr=True,
    )
    assert plain.startswith("my-") and len(plain) == 3 + 43
    assert key.prefix == plain[:12] and key.id.startswith("key_")

    found = await store.key_by_plain(plain)
    assert found is not None
    stored, owner = found
    assert owner == app
    assert stored == key
    assert isinstance(stored.limit_usd, Decimal) and stored.limit_usd == Decimal("12.3456789012")
    assert stored.allowed_models == ("a/one", "b/two") and stored.zdr is True

    plain_default = (await store.create_key(app.id, label="default"))[1]
    default = await store.key_by_plain(plain_default)
    assert default is not None
    assert (default[0].allowed_models, default[0].limit_usd, default[0].zdr) == (None, None, False)

    assert await store.key_by_plain(plain + "x") is None
    assert await store.key_by_plain("my-" + secrets.token_urlsafe(32)) is None

    other = await store.create_app("other")
    assert await store.revoke_key(other.id, key.id) is None
    assert await store.revoke_key(app.id, "key_missing") is None
    revoked = await store.revoke_key(app.id, key.id)
    assert revoked is not None and revoked.revoked_at is not None
    assert dataclasses.replace(revoked, revoked_at=None) == key
    after = await store.key_by_plain(plain)
    assert after is not None and after[0].revoked_at == revoked.revoked_at
    assert [k.revoked_at is None for k in await store.list_keys(app.id)] == [False, True]


@on_session_loop
async def test_the_database_holds_only_a_hash_of_each_key(store: Store, db_url: str) -> None:
    app = await store.create_app("shop")
    _, plain = await store.create_key(app.id, label="ci")
    _, _, attached_plain = await store.attach_model(app.id, "google/gemma-3-270m", "INFERENCE")

    async with raw(db_url) as conn:
        rows = (await conn.execute(text("SELECT * FROM api_keys"))).mappings().all()
    assert len(rows) == 2
    for secret in (plain, attached_plain):
        assert not any(secret in str(v) for row in rows for v in row.values())
        assert secret[3:] not in str([dict(r) for r in rows])
    hashes = {r["key_hash"] for r in rows}
    assert hashes == {hashlib.sha256(p.encode()).hexdigest() for p in (plain, attached_plain)}


# -- ledger ------------------------------------------------------------------------------


@on_session_loop
async def test_a_thousand_generations_go_in_at_once_and_come_back_field_by_field(
    store: Store,
) -> None:
    plus_two = timezone(timedelta(hours=2))
    special = generation(
        500,
        created_at=datetime(2024, 3, 1, 12, 30, 45, 123456, tzinfo=plus_two),
        provider=None,
        endpoint=None,
        status=502,
        error="upstream timed out",
        tokens_prompt=1234,
        tokens_completion=567,
        tokens_cached=89,
        tokens_cache_write=10,
        tokens_reasoning=11,
        cost=Decimal("0.0012345678"),
        latency_ms=123.456,
        generation_time_ms=2345.5,
        streamed=True,
        cancelled=True,
        finish_reason="length",
        native_finish_reason="MAX_TOKENS",
        is_byok=True,
        http_referer="https://example.com/app",
        x_title="Example ✓",
        params={"temperature": 0.7, "top_p": 0.95, "stop": ["\n\n"], "seed": 42},
        attempts=[
            Attempt(provider="openai", status=429, error="rate limited", duration_ms=12.5),
            Attempt(provider="local", status=200, error=None, duration_ms=2400.0),
        ],
        prompt_text="Héllo",
        output_text="Wörld 🌍",
        api="messages",
    )
    rows = [generation(i, cost=Decimal("0.0000001")) for i in range(1000)]
    rows[500] = special

    started = time.perf_counter()
    await store.insert_generations(rows)
    elapsed = time.perf_counter() - started
    assert elapsed < 5, f"1,000 rows took {elapsed:.2f}s"

    assert await store.count_generations() == 1000
    got = await store.get_generation(special.id)
    assert got is not None
    for f in dataclasses.fields(Generation):
        assert getattr(got, f.name) == getattr(special, f.name), f.name
    assert isinstance(got.cost, Decimal) and str(got.cost.normalize()) == "0.0012345678"
    assert got.created_at.utcoffset() == timedelta(0)
    assert got.created_at == datetime(2024, 3, 1, 10, 30, 45, 123456, tzinfo=UTC)
    assert got.attempts[0] == Attempt("openai", 429, "rate limited", 12.5)
    assert got.throughput == special.throughput

    plain_row = await store.get_generation("gen-000001")
    assert plain_row == rows[1] and plain_row.api == "chat.completions"
    assert await store.get_generation("gen-missing") is None
    await store.insert_generations([])
    assert await store.count_generations() == 1000


@on_session_loop
async def test_a_nul_character_in_a_text_field_cannot_wedge_the_ledger(store: Store) -> None:
    # PostgreSQL text cannot hold NUL: stored as U+FFFD, the row and its batch still land.
    odd = generation(
        1,
        error="bad\x00byte",
        x_title="a\x00b",
        prompt_text="\x00",
        params={"stop": ["\x00"], "user": "u\x00"},
        attempts=[Attempt("local", 502, "up\x00stream", 3.0)],
    )
    await store.insert_generations([odd, generation(2)])
    got = await store.get_generation(odd.id)
    assert got is not None
    assert (got.error, got.x_title, got.prompt_text) == ("bad\ufffdbyte", "a\ufffdb", "\ufffd")
    # Inside JSON columns too: both databases keep the same values.
    assert got.params == {"stop": ["\ufffd"], "user": "u\ufffd"}
    assert got.attempts[0].error == "up\ufffdstream"
    assert await store.count_generations() == 2


def test_sqlite_batches_are_cut_into_statements_of_a_few_cached_sizes() -> None:
    assert chunk_sizes(0) == []
    assert chunk_sizes(5) == [4, 1]
    assert chunk_sizes(500) == [256, 64, 64, 64, 16, 16, 16, 4]
    for count in range(0, 1200, 7):
        sizes = chunk_sizes(count)
        assert sum(sizes) == count and set(sizes) <= set(SQLITE_CHUNKS)
        assert sizes == sorted(sizes, reverse=True) and len(sizes) <= 3 * len(SQLITE_CHUNKS) + 5


@on_session_loop
async def test_naive_datetimes_are_refused(store: Store) -> None:
    with pytest.raises(Exception, match="naive datetime"):
        await store.insert_generations([generation(1, created_at=datetime(2024, 3, 1, 10, 0))])
    assert await store.count_generations() == 0


@on_session_loop
async def test_spend_sums_cost_exactly_per_key_and_app_since_a_time(store: Store) -> None:
    tenth, tiny = Decimal("0.1"), Decimal("0.0000000001")
    rows = [generation(i, cost=tenth) for i in range(10)]  # floats would not sum to 1
    rows += [generation(10 + i, created_at=DAY2 + timedelta(hours=i), cost=tiny) for i in range(3)]
    rows.append(generation(20, key_id="key_2", created_at=DAY2, cost=Decimal("2.5")))
    rows.append(generation(21, app_id="app_2", key_id="key_3", cost=Decimal("7")))
    await store.insert_generations(rows)

    # 01:00 at UTC+1 is DAY2 00:00 UTC: rows at exactly `since` count.
    since = datetime(2024, 3, 2, 1, 0, tzinfo=timezone(timedelta(hours=1)))
    assert await store.key_spend("key_1") == Decimal("1.0000000003")
    assert await store.key_spend("key_1", since=since) == Decimal("0.0000000003")
    assert await store.key_spend("key_1", since=DAY2 + timedelta(hours=2)) == tiny
    assert await store.app_spend("app_1") == Decimal("3.5000000003")
    assert await store.app_spend("app_1", since=since) == Decimal("2.5000000003")
    assert await store.app_spend("app_2") == Decimal(7)
    assert await store.key_spend("key_missing") == Decimal(0)
    assert await store.app_spend("app_1", since=DAY2 + timedelta(days=1)) == Decimal(0)


@on_session_loop
async def test_usage_is_grouped_by_utc_day_and_model(store: Store) -> None:
    late_evening = datetime(2024, 3, 1, 19, 30, tzinfo=timezone(timedelta(hours=-5)))  # DAY2 UTC
    usage = {"tokens_prompt": 10, "tokens_completion": 5, "cost": Decimal("0.01")}
    await store.insert_generations(
        [
            generation(1, model="b/model", **usage),
            generation(2, model="a/model", **usage),
            generation(3, model="a/model", created_at=DAY1 + timedelta(hours=13), **usage),
            generation(4, model="a/model", created_at=late_evening, **usage),
            generation(5, model="b/model", created_at=DAY2 + timedelta(hours=3), **usage),
            generation(6, model="b/model", created_at=DAY2, tokens_prompt=1, cost=Decimal(1)),
            generation(7, app_id="app_2", model="a/model", **usage),
        ]
    )

    cent = Decimal("0.01")
    assert await store.usage_by_day("app_1") == [
        UsageRow("2024-03-01", "a/model", 2, 20, 10, 2 * cent),
        UsageRow("2024-03-01", "b/model", 1, 10, 5, cent),
        UsageRow("2024-03-02", "a/model", 1, 10, 5, cent),
        UsageRow("2024-03-02", "b/model", 2, 11, 5, Decimal("1.01")),
    ]
    assert await store.usage_by_day("app_1", since=DAY2 + timedelta(minutes=30)) == [
        UsageRow("2024-03-02", "a/model", 1, 10, 5, cent),
        UsageRow("2024-03-02", "b/model", 1, 10, 5, cent),
    ]
    assert await store.usage_by_day("app_missing") == []


@on_session_loop
async def test_usage_is_split_by_api_within_a_day_and_model(store: Store) -> None:
    usage = {"model": "a/model", "tokens_prompt": 10, "tokens_completion": 5}
    await store.insert_generations(
        [
            generation(1, api="messages", cost=Decimal("0.5"), **usage),
            generation(2, cost=Decimal("0.25"), **usage),
            generation(3, api="messages", cost=Decimal("0.5"), **usage),
            generation(4, api="responses", cost=Decimal(0), **usage),
        ]
    )
    assert await store.usage_by_day("app_1") == [
        UsageRow("2024-03-01", "a/model", 1, 10, 5, Decimal("0.25"), "chat.completions"),
        UsageRow("2024-03-01", "a/model", 2, 20, 10, Decimal(1), "messages"),
        UsageRow("2024-03-01", "a/model", 1, 10, 5, Decimal(0), "responses"),
    ]


def _upgrade_to(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


@on_session_loop
async def test_rows_written_before_the_api_column_read_as_chat_completions(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade_to, "0003")
            old = generation_to_row(generation(1, tokens_prompt=7))
            del old["api"]  # the table at 0003 has no such column
            await conn.execute(generations.insert().values(**old))
    finally:
        await engine.dispose()

    store = await Store.open(db_url)  # migrates to head
    try:
        got = await store.get_generation("gen-000001")
        assert got == generation(1, tokens_prompt=7)
        assert got is not None and got.api == "chat.completions"
        await store.insert_generations([generation(2, api="messages")])
        assert [r.api for r in await store.usage_by_day("app_1")] == [
            "chat.completions",
            "messages",
        ]
    finally:
        await store.close()
