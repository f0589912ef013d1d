"""Apps, model resources, API keys and the generations ledger.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Dollars: exact NUMERIC on PostgreSQL, an integer count of 1e-10 dollars on SQLite.
MONEY = sa.Numeric(20, 10).with_variant(sa.BigInteger(), "sqlite")
TIME = sa.DateTime(timezone=True)
ID = sa.String(32)


def upgrade() -> None:
    op.create_table(
        "apps",
        sa.Column("id", ID, primary_key=True),
        sa.Column("name", sa.String, nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.UniqueConstraint("name", name="uq_apps_name"),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", ID, primary_key=True),
        sa.Column("app_id", ID, sa.ForeignKey("apps.id", name="fk_api_keys_app"), nullable=False),
        sa.Column("label", sa.String, nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("revoked_at", TIME, nullable=True),
        sa.Column("allowed_models", sa.JSON, nullable=True),
        sa.Column("limit_usd", MONEY, nullable=True),
        sa.Column("limit_reset", sa.String(16), nullable=True),
        sa.Column("rpm", sa.Integer, nullable=True),
        sa.Column("tpm", sa.Integer, nullable=True),
        sa.Column("zdr", sa.Boolean, nullable=False),
    )
    op.create_index("ix_api_keys_key_hash", "api_keys", ["key_hash"], unique=True)
    op.create_index("ix_api_keys_app_id", "api_keys", ["app_id"])
    op.create_table(
        "model_resources",
        sa.Column("id", ID, primary_key=True),
        sa.Column(
            "app_id", ID, sa.ForeignKey("apps.id", name="fk_model_resources_app"), nullable=False
        ),
        sa.Column("model_id", sa.String, nullable=False),
        sa.Column("alias", sa.String, nullable=False),
        sa.Column(
            "key_id",
            ID,
            sa.ForeignKey("api_keys.id", name="fk_model_resources_key"),
            nullable=False,
        ),
        sa.Column("created_at", TIME, nullable=False),
        sa.UniqueConstraint("app_id", "alias", name="uq_model_resources_app_alias"),
    )
    op.create_table(
        "generations",
        sa.Column("id", sa.String, primary_key=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("app_id", ID, nullable=True),
        sa.Column("key_id", ID, nullable=True),
        sa.Column("model", sa.String, nullable=False),
        sa.Column("provider", sa.String, nullable=True),
        sa.Column("endpoint", sa.String, nullable=True),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("tokens_prompt", sa.Integer, nullable=False),
        sa.Column("tokens_completion", sa.Integer, nullable=False),
        sa.Column("tokens_cached", sa.Integer, nullable=False),
        sa.Column("tokens_cache_write", sa.Integer, nullable=False),
        sa.Column("tokens_reasoning", sa.Integer, nullable=False),
        sa.Column("cost", MONEY, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=True),
        sa.Column("generation_time_ms", sa.Float, nullable=True),
        sa.Column("streamed", sa.Boolean, nullable=False),
        sa.Column("cancelled", sa.Boolean, nullable=False),
        sa.Column("finish_reason", sa.String, nullable=True),
        sa.Column("native_finish_reason", sa.String, nullable=True),
        sa.Column("is_byok", sa.Boolean, nullable=False),
        sa.Column("http_referer", sa.Text, nullable=True),
        sa.Column("x_title", sa.Text, nullable=True),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("attempts", sa.JSON, nullable=False),
        sa.Column("prompt_text", sa.Text, nullable=True),
        sa.Column("output_text", sa.Text, nullable=True),
    )
    op.create_index("ix_generations_app_created", "generations", ["app_id", "created_at"])
    op.create_index("ix_generations_key_created", "generations", ["key_id", "created_at"])
    op.create_index("ix_generations_model_created", "generations", ["model", "created_at"])


def downgrade() -> None:
    raise NotImplementedError("modelyard migrations are forward-only")
