"""The database schema. The migrations in `migrations/versions` build exactly this."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from modelyard.store.types import Money, UtcDateTime

# Lengths only on the ids this package generates: PostgreSQL enforces VARCHAR(n) and SQLite
# does not, so a bounded column for outside text would behave differently per backend.
metadata = MetaData()

apps = Table(
    "apps",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    UniqueConstraint("name", name="uq_apps_name"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("app_id", String(32), ForeignKey("apps.id", name="fk_api_keys_app"), nullable=False),
    Column("label", String, nullable=False),
    Column("key_hash", String(64), nullable=False),  # sha256 hex of the plain key
    Column("prefix", String(16), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("revoked_at", UtcDateTime(), nullable=True),
    Column("allowed_models", JSON(none_as_null=True), nullable=True),
    Column("limit_usd", Money(), nullable=True),
    Column("limit_reset", String(16), nullable=True),
    Column("rpm", Integer, nullable=True),
    Column("tpm", Integer, nullable=True),
    Column("zdr", Boolean, nullable=False),
    Index("ix_api_keys_key_hash", "key_hash", unique=True),
    Index("ix_api_keys_app_id", "app_id"),
)

model_resources = Table(
    "model_resources",
    metadata,
    Column("id", String(32), primary_key=True),
    Column(
        "app_id", String(32), ForeignKey("apps.id", name="fk_model_resources_app"), nullable=False
    ),
    Column("model_id", String, nullable=False),
    Column("alias", String, nullable=False),  # stored upper-case
    Column(
        "key_id",
        String(32),
        ForeignKey("api_keys.id", name="fk_model_resources_key"),
        nullable=False,
    ),
    Column("created_at", UtcDateTime(), nullable=False),
    UniqueConstraint("app_id", "alias", name="uq_model_resources_app_alias"),
)

# An app's own keys for upstream providers (BYOK), encrypted with MODELYARD_SECRET_KEY.
provider_keys = Table(
    "provider_keys",
    metadata,
    Column(
        "app_id", String(32), ForeignKey("apps.id", name="fk_provider_keys_app"), nullable=False
    ),
    Column("provider_id", String, nullable=False),
    Column("ciphertext", Text, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    UniqueConstraint("app_id", "provider_id", name="uq_provider_keys_app_provider"),
)

# The ledger is append-only history: no foreign keys, so a row is never refused (or a
# whole batch lost) because of what happened to its app or key.
generations = Table(
    "generations",
    metadata,
    Column("id", String, primary_key=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("app_id", String(32), nullable=True),
    Column("key_id", String(32), nullable=True),
    Column("model", String, nullable=False),
    Column("provider", String, nullable=True),
    Column("endpoint", String, nullable=True),
    Column("status", Integer, nullable=False),
    Column("error", Text, nullable=True),
    Column("tokens_prompt", Integer, nullable=False),
    Column("tokens_completion", Integer, nullable=False),
    Column("tokens_cached", Integer, nullable=False),
    Column("tokens_cache_write", Integer, nullable=False),
    Column("tokens_reasoning", Integer, nullable=False),
    Column("cost", Money(), nullable=False),
    Column("latency_ms", Float, nullable=True),
    Column("generation_time_ms", Float, nullable=True),
    Column("streamed", Boolean, nullable=False),
    Column("cancelled", Boolean, nullable=False),
    Column("finish_reason", String, nullable=True),
    Column("native_finish_reason", String, nullable=True),
    Column("is_byok", Boolean, nullable=False),
    Column("http_referer", Text, nullable=True),
    Column("x_title", Text, nullable=True),
    Column("params", JSON, nullable=False),
    Column("attempts", JSON, nullable=False),
    Column("prompt_text", Text, nullable=True),
    Column("output_text", Text, nullable=True),
    # Last, where migration 0004 added it. Old rows came through chat completions.
    Column("api", String(32), nullable=False, server_default="chat.completions"),
    Index("ix_generations_app_created", "app_id", "created_at"),
    Index("ix_generations_key_created", "key_id", "created_at"),
    Index("ix_generations_model_created", "model", "created_at"),
)

# Admins signed in on the web pages. Only the SHA-256 of a session id (the cookie) is kept;
# signing out deletes the row, so the old cookie opens nothing on any worker or replica.
admin_sessions = Table(
    "admin_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("csrf_token", String(64), nullable=False),
    # The admin key the session was opened with: rotating the key ends every session.
    Column("admin_key_hash", String(64), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Index("ix_admin_sessions_expires_at", "expires_at"),
)

# Stored Responses API responses (`store`, `previous_response_id`), until `expires_at`.
# The items are JSON text written with orjson (the same text on both databases, and quick
# for long conversations); `id` is the key every lookup goes by, the app checked with it.
responses = Table(
    "responses",
    metadata,
    Column("id", String, primary_key=True),
    Column("app_id", String(32), nullable=True),
    Column("key_id", String(32), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Column("model", String, nullable=False),
    Column("input_items", Text, nullable=False),
    Column("output_items", Text, nullable=False),
    Column("history_items", Text, nullable=False),
    Column("response", Text, nullable=False),
    Index("ix_responses_expires_at", "expires_at"),
)
