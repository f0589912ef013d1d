"""Alembic environment. Run only through `modelyard.store.migrate`, which passes a connection."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from modelyard.store.tables import metadata

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError("modelyard migrations run from modelyard.store.migrate.upgrade()")

context.configure(connection=connection, target_metadata=metadata)
with context.begin_transaction():
    context.run_migrations()
