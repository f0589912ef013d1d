"""Spend that this process has recorded but the ledger writer has not yet written.

Rows wait in the writer's queue for a batch (50 ms by default, more when the database is
slow); until they land, a sum over the ledger misses them. The gateway notes each row's
cost here when it records the row, and forgets it once the writer's insert returns.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from modelyard.store.records import Generation


class UnflushedSpend:
    def __init__(self) -> None:
        self._rows: dict[str, tuple[str, Decimal]] = {}  # generation id -> (key id, cost)
        self._by_key: dict[str, Decimal] = {}

    def recorded(self, row: Generation) -> None:
        if row.key_id is None or not row.cost:
            return
        self._rows[row.id] = (row.key_id, row.cost)
        self._by_key[row.key_id] = self._by_key.get(row.key_id, Decimal(0)) + row.cost

    def flushed(self, rows: Iterable[Generation]) -> None:
        for row in rows:
            entry = self._rows.pop(row.id, None)
            if entry is None:
                continue
            key_id, cost = entry
            left = self._by_key[key_id] - cost
            if left:
                self._by_key[key_id] = left
            else:
                del self._by_key[key_id]

    def amount(self, key_id: str) -> Decimal:
        return self._by_key.get(key_id, Decimal(0))
