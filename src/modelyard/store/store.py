"""The Store: apps, model resources, keys, the generations ledger and stored responses.

SQLite (aiosqlite) and PostgreSQL (asyncpg) behave the same through it. Every method runs
in its own transaction and returns records, never rows.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from modelyard.errors import Conflict, NotFound
from modelyard.store.bulk import BulkSink, BulkTable, open_sink
from modelyard.store.migrate import create_engine, upgrade_to_head
from modelyard.store.records import (
    ApiKey,
    App,
    Generation,
    LimitReset,
    ModelResource,
    StoredResponse,
    UsageRow,
)
from modelyard.store.rows import (
    app_from_row,
    generation_from_row,
    generation_to_row,
    key_from_row,
    key_to_row,
    resource_from_row,
    response_from_row,
    response_to_row,
)
from modelyard.store.tables import (
    api_keys,
    apps,
    generations,
    model_resources,
    provider_keys,
    responses,
)
from modelyard.store.types import utc_day

log = logging.getLogger(__name__)

GENERATIONS = BulkTable(generations)
RESPONSES = BulkTable(responses, skip_existing=True)

KEY_PREFIX_CHARS = 12


def database_url(data_dir: Path, env_url: str | None) -> str:
    if env_url:
        return env_url
    return f"sqlite+aiosqlite:///{data_dir.resolve() / 'modelyard.db'}"


def hash_key(plain: str) -> str:
    return hashlib.sha256(plain.encode()).hexdigest()


def _new_id(kind: str) -> str:
    return f"{kind}_{secrets.token_hex(8)}"


def _now() -> datetime:
    return datetime.now(UTC)


class Store:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._bulk: BulkSink = open_sink(engine)

    @classmethod
    async def open(cls, url: str) -> Store:
        """Connect and bring the schema to the latest migration."""
        engine = create_engine(url)
        try:
            await upgrade_to_head(engine)
        except BaseException:
            await engine.dispose()
            raise
        return cls(engine)

    async def close(self) -> None:
        await self._bulk.close()
        await self._engine.dispose()

    @property
    def engine(self) -> AsyncEngine:
        """For read-only reporting queries (stats); writes go through the methods here."""
        return self._engine

    # -- apps ------------------------------------------------------------------------------

    async def create_app(self, name: str) -> App:
        app = App(id=_new_id("app"), name=name, created_at=_now())
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    insert(apps).values(id=app.id, name=app.name, created_at=app.created_at)
                )
        except IntegrityError as exc:
            raise Conflict(f"An app named '{name}' already exists.") from exc
        return app

    async def get_app(self, name_or_id: str) -> App | None:
        query = select(apps).where(or_(apps.c.name == name_or_id, apps.c.id == name_or_id))
        # A name could equal another app's id; the id wins.
        query = query.order_by((apps.c.id == name_or_id).desc()).limit(1)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return None if row is None else app_from_row(row)

    async def list_apps(self) -> list[App]:
        async with self._engine.connect() as conn:
            rows = await conn.execute(select(apps).order_by(apps.c.created_at, apps.c.name))
            return [app_from_row(r) for r in rows.mappings()]

    # -- model resources -------------------------------------------------------------------

    async def attach_model(
        self, app_id: str, model_id: str, alias: str
    ) -> tuple[ModelResource, ApiKey, str]:
        """Attach a model to an app under `alias` (stored upper-case), with a key for it."""
        alias = alias.upper()
        key, plain = self._new_key(app_id, label=alias, allowed_models=(model_id,))
        resource = ModelResource(
            id=_new_id("res"),
            app_id=app_id,
            model_id=model_id,
            alias=alias,
            key_id=key.id,
            created_at=key.created_at,
        )
        taken = Conflict(f"The alias '{alias}' is already used by a model of this app.")
        try:
            async with self._engine.begin() as conn:
                await self._require_app(conn, app_id)
                existing = await conn.execute(
                    select(model_resources.c.id).where(
                        model_resources.c.app_id == app_id, model_resources.c.alias == alias
                    )
                )
                if existing.first() is not None:
                    raise taken
                await conn.execute(insert(api_keys).values(key_to_row(key, hash_key(plain))))
                await conn.execute(
                    insert(model_resources).values(
                        id=resource.id,
                        app_id=app_id,
                        model_id=model_id,
                        alias=alias,
                        key_id=key.id,
                        created_at=resource.created_at,
                    )
                )
        except IntegrityError as exc:  # a concurrent attach took the alias first
            raise taken from exc
        return resource, key, plain

    async def list_resources(self, app_id: str) -> list[ModelResource]:
        query = (
            select(model_resources)
            .where(model_resources.c.app_id == app_id)
            .order_by(model_resources.c.created_at, model_resources.c.alias)
        )
        async with self._engine.connect() as conn:
            return [resource_from_row(r) for r in (await conn.execute(query)).mappings()]

    async def find_resource(self, app_id: str, alias_or_id: str) -> ModelResource | None:
        query = select(model_resources).where(
            model_resources.c.app_id == app_id,
            or_(
                model_resources.c.alias == alias_or_id.upper(),
                model_resources.c.id == alias_or_id,
            ),
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query.limit(1))).mappings().first()
        return None if row is None else resource_from_row(row)

    async def detach_resource(self, resource_id: str) -> None:
        """Delete the resource (freeing its alias) and revoke its key, in one transaction."""
        async with self._engine.begin() as conn:
            deleted = await conn.execute(
                model_resources.delete()
                .where(model_resources.c.id == resource_id)
                .returning(model_resources.c.key_id)
            )
            key_id = deleted.scalar_one_or_none()
            if key_id is not None:
                await conn.execute(
                    update(api_keys)
                    .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                    .values(revoked_at=_now())
                )

    async def destroy_resource(self, resource_id: str) -> None:
        await self.detach_resource(resource_id)

    # -- keys ------------------------------------------------------------------------------

    async def create_key(
        self,
        app_id: str,
        *,
        label: str,
        allowed_models: tuple[str, ...] | None = None,
        limit_usd: Decimal | None = None,
        limit_reset: LimitReset | None = None,
        rpm: int | None = None,
        tpm: int | None = None,
        zdr: bool = False,
    ) -> tuple[ApiKey, str]:
        key, plain = self._new_key(
            app_id,
            label=label,
            allowed_models=allowed_models,
            limit_usd=limit_usd,
            limit_reset=limit_reset,
            rpm=rpm,
            tpm=tpm,
            zdr=zdr,
        )
        async with self._engine.begin() as conn:
            await self._require_app(conn, app_id)
            await conn.execute(insert(api_keys).values(key_to_row(key, hash_key(plain))))
        return key, plain

    async def list_keys(self, app_id: str) -> list[ApiKey]:
        query = (
            select(api_keys)
            .where(api_keys.c.app_id == app_id)
            .order_by(api_keys.c.created_at, api_keys.c.id)
        )
        async with self._engine.connect() as conn:
            return [key_from_row(r) for r in (await conn.execute(query)).mappings()]

    async def revoke_key(self, app_id: str, key_id: str) -> ApiKey | None:
        """Revoke a key of that app (idempotent: a revoked key keeps its first revoked_at)."""
        where = (api_keys.c.id == key_id, api_keys.c.app_id == app_id)
        async with self._engine.begin() as conn:
            await conn.execute(
                update(api_keys)
                .where(*where, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=_now())
            )
            row = (await conn.execute(select(api_keys).where(*where))).mappings().first()
        return None if row is None else key_from_row(row)

    async def key_by_plain(self, plain: str) -> tuple[ApiKey, App] | None:
        query = (
            select(api_keys, apps.c.name.label("app_name"), apps.c.created_at.label("app_created"))
            .join(apps, apps.c.id == api_keys.c.app_id)
            .where(api_keys.c.key_hash == hash_key(plain))
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        if row is None:
            return None
        app = App(id=row["app_id"], name=row["app_name"], created_at=row["app_created"])
        return key_from_row(row), app

    # -- provider keys (BYOK; the store only ever sees ciphertext) ------------------------

    async def set_provider_key(self, app_id: str, provider_id: str, ciphertext: str) -> None:
        where = (provider_keys.c.app_id == app_id, provider_keys.c.provider_id == provider_id)
        async with self._engine.begin() as conn:
            await self._require_app(conn, app_id)
            await conn.execute(delete(provider_keys).where(*where))
            await conn.execute(
                insert(provider_keys).values(
                    app_id=app_id, provider_id=provider_id, ciphertext=ciphertext, created_at=_now()
                )
            )

    async def delete_provider_key(self, app_id: str, provider_id: str) -> bool:
        where = (provider_keys.c.app_id == app_id, provider_keys.c.provider_id == provider_id)
        async with self._engine.begin() as conn:
            result = await conn.execute(delete(provider_keys).where(*where))
        return bool(result.rowcount)

    async def provider_keys(self, app_id: str) -> dict[str, str]:
        """provider id → ciphertext of the app's own key for it."""
        query = select(provider_keys.c.provider_id, provider_keys.c.ciphertext).where(
            provider_keys.c.app_id == app_id
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return {provider: ciphertext for provider, ciphertext in rows}

    # -- ledger ----------------------------------------------------------------------------

    async def insert_generations(self, rows: Sequence[Generation]) -> None:
        """All the rows in one transaction of a few statements (store/bulk.py says why)."""
        await self._bulk.insert(GENERATIONS, [generation_to_row(row) for row in rows])

    async def get_generation(self, generation_id: str) -> Generation | None:
        query = select(generations).where(generations.c.id == generation_id)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return None if row is None else generation_from_row(row)

    async def key_spend(self, key_id: str, since: datetime | None = None) -> Decimal:
        return await self._spend(generations.c.key_id == key_id, since)

    async def app_spend(self, app_id: str, since: datetime | None = None) -> Decimal:
        return await self._spend(generations.c.app_id == app_id, since)

    async def usage_by_day(self, app_id: str, since: datetime | None = None) -> list[UsageRow]:
        """Requests, tokens and cost of one app per UTC day, model and API, in that order."""
        day = utc_day(generations.c.created_at, self._engine.dialect.name).label("day")
        query: Select[Any] = select(
            day,
            generations.c.model,
            generations.c.api,
            func.count().label("requests"),
            func.sum(generations.c.tokens_prompt).label("tokens_prompt"),
            func.sum(generations.c.tokens_completion).label("tokens_completion"),
            func.sum(generations.c.cost).label("cost"),
        ).where(generations.c.app_id == app_id)
        if since is not None:
            query = query.where(generations.c.created_at >= since)
        keys = (day, generations.c.model, generations.c.api)
        query = query.group_by(*keys).order_by(*keys)
        async with self._engine.connect() as conn:
            result = (await conn.execute(query)).mappings().all()
        return [
            UsageRow(
                day=str(r["day"]),
                model=r["model"],
                requests=int(r["requests"]),
                tokens_prompt=int(r["tokens_prompt"]),
                tokens_completion=int(r["tokens_completion"]),
                cost=r["cost"],
                api=r["api"],
            )
            for r in result
        ]

    async def count_generations(self) -> int:
        async with self._engine.connect() as conn:
            count = (await conn.execute(select(func.count()).select_from(generations))).scalar()
        return int(count or 0)

    # -- stored responses ------------------------------------------------------------------

    async def insert_responses(self, items: Sequence[StoredResponse]) -> None:
        """All the items in one transaction; an id already stored is left as it is, so a
        batch retried after a commit whose answer was lost does not fail for ever."""
        rows = []
        for item in items:
            try:
                rows.append(response_to_row(item))
            except TypeError:
                # Content JSON cannot hold (an integer past 64 bits): no retry could write
                # it, and keeping it would hold back every response queued after it.
                log.exception("response %s cannot be stored as JSON; not stored", item.id)
        await self._bulk.insert(RESPONSES, rows)

    async def get_response(
        self, app_id: str | None, response_id: str, now: datetime
    ) -> StoredResponse | None:
        """The app's response with that id, unless it has expired."""
        query = select(responses).where(*self._live_response(app_id, response_id, now))
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return None if row is None else response_from_row(row)

    async def delete_response(self, app_id: str | None, response_id: str, now: datetime) -> bool:
        query = delete(responses).where(*self._live_response(app_id, response_id, now))
        async with self._engine.begin() as conn:
            result = await conn.execute(query)
        return bool(result.rowcount)

    async def purge_responses(self, now: datetime, *, batch: int = 1000) -> int:
        """Delete the expired responses, `batch` a transaction (SQLite's one writer is never
        held long), and return how many went."""
        expired = select(responses.c.id).where(responses.c.expires_at <= now).limit(batch)
        purged = 0
        while True:
            async with self._engine.begin() as conn:
                result = await conn.execute(delete(responses).where(responses.c.id.in_(expired)))
            purged += result.rowcount
            if result.rowcount < batch:
                return purged

    @staticmethod
    def _live_response(
        app_id: str | None, response_id: str, now: datetime
    ) -> tuple[ColumnElement[bool], ...]:
        owner = responses.c.app_id.is_(None) if app_id is None else responses.c.app_id == app_id
        return responses.c.id == response_id, owner, responses.c.expires_at > now

    # -- helpers ---------------------------------------------------------------------------

    @staticmethod
    def _new_key(
        app_id: str,
        *,
        label: str,
        allowed_models: tuple[str, ...] | None = None,
        limit_usd: Decimal | None = None,
        limit_reset: LimitReset | None = None,
        rpm: int | None = None,
        tpm: int | None = None,
        zdr: bool = False,
    ) -> tuple[ApiKey, str]:
        plain = "my-" + secrets.token_urlsafe(32)
        key = ApiKey(
            id=_new_id("key"),
            app_id=app_id,
            label=label,
            prefix=plain[:KEY_PREFIX_CHARS],
            created_at=_now(),
            allowed_models=allowed_models,
            limit_usd=limit_usd,
            limit_reset=limit_reset,
            rpm=rpm,
            tpm=tpm,
            zdr=zdr,
        )
        return key, plain

    @staticmethod
    async def _require_app(conn: AsyncConnection, app_id: str) -> None:
        found = await conn.execute(select(apps.c.id).where(apps.c.id == app_id))
        if found.first() is None:
            raise NotFound(f"No app with id '{app_id}'.")

    async def _spend(self, which: ColumnElement[bool], since: datetime | None) -> Decimal:
        query = select(func.sum(generations.c.cost)).where(which)
        if since is not None:
            query = query.where(generations.c.created_at >= since)
        async with self._engine.connect() as conn:
            total = (await conn.execute(query)).scalar()
        return Decimal(0) if total is None else Decimal(total)
