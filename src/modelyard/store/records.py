"""What the store keeps, as plain typed records (no ORM objects leave the store)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

LimitReset = Literal["daily", "weekly", "monthly"]


@dataclass(frozen=True, slots=True)
class App:
    id: str  # "app_…"
    name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ModelResource:
    """A model attached to an app (Heroku's "model resource"), with the key made for it."""

    id: str  # "res_…"
    app_id: str
    model_id: str  # catalog model id, e.g. "google/gemma-3-270m"
    alias: str  # upper-case config var prefix, e.g. "INFERENCE"
    key_id: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str  # "key_…"
    app_id: str
    label: str
    prefix: str  # the first characters of the plain key, safe to show
    created_at: datetime
    revoked_at: datetime | None = None
    # None: every model attached to the app; else only these catalog model ids.
    allowed_models: tuple[str, ...] | None = None
    limit_usd: Decimal | None = None
    limit_reset: LimitReset | None = None  # None with a limit: a total limit
    rpm: int | None = None
    tpm: int | None = None
    zdr: bool = False


@dataclass(frozen=True, slots=True)
class Attempt:
    provider: str
    status: int
    error: str | None
    duration_ms: float


@dataclass(slots=True)
class Generation:
    """One ledger row: everything about one request except, by default, its text."""

    id: str
    created_at: datetime
    app_id: str | None
    key_id: str | None
    model: str
    provider: str | None
    endpoint: str | None
    status: int
    error: str | None = None
    tokens_prompt: int = 0
    tokens_completion: int = 0
    tokens_cached: int = 0
    tokens_cache_write: int = 0
    tokens_reasoning: int = 0
    cost: Decimal = Decimal(0)
    latency_ms: float | None = None  # time to first token
    generation_time_ms: float | None = None
    streamed: bool = False
    cancelled: bool = False
    finish_reason: str | None = None
    native_finish_reason: str | None = None
    is_byok: bool = False
    http_referer: str | None = None
    x_title: str | None = None
    params: dict[str, Any] = field(default_factory=dict)  # sampling parameters sent
    attempts: list[Attempt] = field(default_factory=list)
    prompt_text: str | None = None  # only with content logging on, never for ZDR keys
    output_text: str | None = None
    # The API the request came through: "chat.completions", "messages" or "responses".
    api: str = "chat.completions"

    @property
    def throughput(self) -> float | None:
        """Completion tokens per second of generation time."""
        if not self.generation_time_ms or not self.tokens_completion:
            return None
        return self.tokens_completion / (self.generation_time_ms / 1000)


@dataclass(frozen=True, slots=True)
class UsageRow:
    """Requests, tokens and spend of one app for one day, model and API."""

    day: str  # YYYY-MM-DD (UTC)
    model: str
    requests: int
    tokens_prompt: int
    tokens_completion: int
    cost: Decimal
    api: str = "chat.completions"


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """A Responses API response kept for `previous_response_id` and GET/DELETE by id.

    The archive keeps the lists and dicts as given until they are written: build them
    fresh for each response and do not change them after saving.
    """

    id: str  # "resp_…"
    app_id: str | None  # None for the admin's own calls (models:call)
    key_id: str | None
    created_at: datetime
    expires_at: datetime
    model: str
    input_items: list[dict[str, Any]]  # what the request sent, as items
    output_items: list[dict[str, Any]]  # what the model answered, as items
    response: dict[str, Any]  # the whole response object as returned to the client
    # The items of every earlier turn of its previous_response_id chain, so a continuation
    # is one read, not a walk.
    history_items: list[dict[str, Any]] = field(default_factory=list)

    @property
    def conversation(self) -> list[dict[str, Any]]:
        """The items a continuation of this response starts from: history, input, output."""
        return [*self.history_items, *self.input_items, *self.output_items]
