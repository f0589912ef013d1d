"""Which API each ledger row came through: chat completions, messages or responses.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The server default fills the rows already there (all chat completions) in one step,
    # on SQLite as on PostgreSQL (11+ without rewriting the table), and keeps NOT NULL.
    op.add_column(
        "generations",
        sa.Column("api", sa.String(32), nullable=False, server_default="chat.completions"),
    )


def downgrade() -> None:
    raise NotImplementedError("migrations only go forward")
