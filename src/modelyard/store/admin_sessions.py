"""The admin_sessions table: open, find and end the web pages' admin sessions.

Kept in the database (not in process memory) so that with `serve --workers N` or several
replicas any process sees a sign-in, and a sign-out ends the session everywhere at once.
Rows hold hashes of the session id and of the admin key, never either in plain.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from modelyard.store.tables import admin_sessions


@dataclass(frozen=True)
class AdminSessionRow:
    csrf_token: str
    expires_at: datetime


class AdminSessionTable:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def insert(
        self,
        id_hash: str,
        csrf_token: str,
        admin_key_hash: str,
        now: datetime,
        expires_at: datetime,
    ) -> None:
        """Open a session, dropping the ones that have ended (the table stays small)."""
        async with self._engine.begin() as conn:
            await conn.execute(delete(admin_sessions).where(admin_sessions.c.expires_at <= now))
            await conn.execute(
                insert(admin_sessions).values(
                    id_hash=id_hash,
                    csrf_token=csrf_token,
                    admin_key_hash=admin_key_hash,
                    created_at=now,
                    expires_at=expires_at,
                )
            )

    async def find(
        self, id_hash: str, admin_key_hash: str, now: datetime
    ) -> AdminSessionRow | None:
        """The live session with this id, opened with this admin key."""
        query = select(admin_sessions.c.csrf_token, admin_sessions.c.expires_at).where(
            admin_sessions.c.id_hash == id_hash,
            admin_sessions.c.admin_key_hash == admin_key_hash,
            admin_sessions.c.expires_at > now,
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else AdminSessionRow(row.csrf_token, row.expires_at)

    async def delete(self, id_hash: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(delete(admin_sessions).where(admin_sessions.c.id_hash == id_hash))
