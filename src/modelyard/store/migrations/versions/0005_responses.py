"""Stored Responses API responses.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "responses",
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("app_id", sa.String(32), nullable=True),
        sa.Column("key_id", sa.String(32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("model", sa.String, nullable=False),
        # JSON text (orjson), the same on SQLite and PostgreSQL.
        sa.Column("input_items", sa.Text, nullable=False),
        sa.Column("output_items", sa.Text, nullable=False),
        sa.Column("history_items", sa.Text, nullable=False),
        sa.Column("response", sa.Text, nullable=False),
    )
    op.create_index("ix_responses_expires_at", "responses", ["expires_at"])


def downgrade() -> None:
    raise NotImplementedError("migrations only go forward")
