"""Apps' own provider keys (BYOK), stored encrypted.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "provider_keys",
        sa.Column(
            "app_id",
            sa.String(32),
            sa.ForeignKey("apps.id", name="fk_provider_keys_app"),
            nullable=False,
        ),
        sa.Column("provider_id", sa.String, nullable=False),
        sa.Column("ciphertext", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("app_id", "provider_id", name="uq_provider_keys_app_provider"),
    )


def downgrade() -> None:
    raise NotImplementedError("migrations only go forward")
