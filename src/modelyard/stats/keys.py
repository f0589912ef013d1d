"""One key's spend through its app's own provider keys (BYOK), per period, from the ledger.

`GET /v1/key` reports it apart from the rest of the key's spend, as OpenRouter's
`byok_usage*` fields. Rows the ledger writer has not written yet are not counted.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from modelyard.store.tables import generations as g


def _sum_since(since: datetime | None) -> ColumnElement[Any]:
    if since is None:
        return func.coalesce(func.sum(g.c.cost), 0)
    return func.coalesce(func.sum(case((g.c.created_at >= since, g.c.cost), else_=0)), 0)


async def byok_spend(
    conn: AsyncConnection, key_id: str, periods: dict[str, datetime | None]
) -> dict[str, Decimal]:
    """Period name → the key's BYOK spend since its start (None: all time), one query."""
    columns = [_sum_since(since).label(name) for name, since in periods.items()]
    query = select(*columns).where(and_(g.c.key_id == key_id, g.c.is_byok.is_(True)))
    row = (await conn.execute(query)).mappings().one()
    return {name: Decimal(str(row[name])) for name in periods}
