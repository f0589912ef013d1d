"""The gateway's long-lived objects, made once at start-up and shared by the endpoints."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from modelyard.access.authenticator import Authenticator
from modelyard.catalog import Catalog, load_catalog
from modelyard.config import Settings, ensure_admin_key, ensure_data_dir, write_private
from modelyard.errors import Conflict
from modelyard.ledger.writer import LedgerWriter
from modelyard.limits.base import RateLimiter
from modelyard.limits.budget import BudgetGuard, LedgerSpend, SpendBackend
from modelyard.limits.budget_memory import MemoryBudget
from modelyard.limits.budget_redis import RedisBudget
from modelyard.limits.budget_unflushed import UnflushedSpend
from modelyard.limits.memory import MemoryRateLimiter
from modelyard.limits.redis_backend import RedisRateLimiter
from modelyard.limits.redis_client import RedisClient
from modelyard.metrics import GatewayMetrics
from modelyard.providers.credentials import OperatorKeys
from modelyard.providers.registry import ProviderContext, ProviderRegistry, builtin_registry
from modelyard.routing.planner import Planner
from modelyard.schema.image_urls import ImageUrlPolicy
from modelyard.secret_box import SecretBox
from modelyard.service import GenerationService
from modelyard.service.observers import (
    BudgetObserver,
    HealthObserver,
    LedgerObserver,
    LimiterObserver,
    MetricsObserver,
    Observer,
    StickyObserver,
)
from modelyard.stats import Stats
from modelyard.store import ApiKey, App, Store
from modelyard.store.records import Generation
from modelyard.store.response_archive import ResponseArchive
from modelyard.store.store import database_url

log = logging.getLogger(__name__)

BOOTSTRAP_APP = "default"
# The model the first app gets. The instruction-tuned huggingface/smollm2-135m-instruct is
# in the catalog; it becomes the default once the tests and pages that name this one move.
BOOTSTRAP_MODEL = "huggingface/smollm2-135m-instruct"
BOOTSTRAP_KEY_FILE = "default_app_key"


class StoreDirectory:
    """The authenticator's view of the store."""

    def __init__(self, store: Store, box: SecretBox | None) -> None:
        self._store = store
        self._box = box

    async def key_by_plain(self, plain: str) -> tuple[ApiKey, App] | None:
        return await self._store.key_by_plain(plain)

    async def app_model_ids(self, app_id: str) -> frozenset[str]:
        return frozenset(r.model_id for r in await self._store.list_resources(app_id))

    async def app_provider_keys(self, app_id: str) -> dict[str, str]:
        sealed = await self._store.provider_keys(app_id)
        if not sealed or self._box is None:
            return {}
        return {provider: self._box.open(ciphertext) for provider, ciphertext in sealed.items()}


@dataclass
class Gateway:
    settings: Settings
    catalog: Catalog
    providers: ProviderRegistry
    planner: Planner
    admin_key: str
    _store: Store | None = None
    _ledger: LedgerWriter | None = None
    _auth: Authenticator | None = None
    _metrics: GatewayMetrics | None = None
    _box: SecretBox | None = None
    _limiter: RateLimiter | None = None
    _budget: BudgetGuard | None = None
    _stats: Stats | None = None
    _service: GenerationService | None = None
    _responses: ResponseArchive | None = None
    # Made by this start: the banner shows a key in full only on the start that made it.
    admin_key_created: bool = False
    bootstrap_key: str | None = field(default=None)
    # Which image URLs a request may hand an upstream to fetch.
    image_urls: ImageUrlPolicy = field(default_factory=ImageUrlPolicy)

    @classmethod
    def create(cls, settings: Settings, providers: ProviderRegistry | None = None) -> Gateway:
        registry = providers or builtin_registry(load_local=settings.load_local_models)
        catalog = load_catalog(settings.catalog_file, kinds=registry.kinds_info())
        admin_key = ensure_admin_key(settings)
        return cls(
            settings=settings,
            catalog=catalog,
            providers=registry,
            planner=Planner(catalog, registry),
            admin_key=admin_key.value,
            admin_key_created=admin_key.created,
            _box=SecretBox(settings.secret_key) if settings.secret_key else None,
            image_urls=ImageUrlPolicy.parse(
                settings.image_url_allow, allow_http=settings.image_url_allow_http
            ),
        )

    # The store, ledger and authenticator exist between start() and close().
    @property
    def store(self) -> Store:
        assert self._store is not None, "gateway not started"
        return self._store

    @property
    def ledger(self) -> LedgerWriter:
        assert self._ledger is not None, "gateway not started"
        return self._ledger

    @property
    def metrics(self) -> GatewayMetrics:
        assert self._metrics is not None, "gateway not started"
        return self._metrics

    @property
    def limiter(self) -> RateLimiter:
        assert self._limiter is not None, "gateway not started"
        return self._limiter

    @property
    def stats(self) -> Stats:
        assert self._stats is not None, "gateway not started"
        return self._stats

    @property
    def budget(self) -> BudgetGuard:
        assert self._budget is not None, "gateway not started"
        return self._budget

    @property
    def service(self) -> GenerationService:
        """The request pipeline every front door hands its parsed requests to."""
        assert self._service is not None, "gateway not started"
        return self._service

    @property
    def responses(self) -> ResponseArchive:
        """Stored Responses API responses (`store`, `previous_response_id`)."""
        assert self._responses is not None, "gateway not started"
        return self._responses

    @property
    def auth(self) -> Authenticator:
        assert self._auth is not None, "gateway not started"
        return self._auth

    @property
    def secret_box(self) -> SecretBox | None:
        """Seals apps' provider keys; None when MODELYARD_SECRET_KEY is not set."""
        return self._box

    async def start(self) -> None:
        settings = self.settings
        ensure_data_dir(settings.data_dir)
        self._store = await Store.open(database_url(settings.data_dir, settings.database_url))
        self._budget = self._budget_guard(self._store)
        self._ledger = LedgerWriter(self._insert_rows, max_delay_s=settings.ledger_batch_delay_s)
        self._ledger.start()
        self._responses = ResponseArchive(
            self._store,
            retention=timedelta(days=settings.response_retention_days),
            enabled=settings.store_responses,
        )
        await self._responses.start()
        self._metrics = GatewayMetrics(lambda: self.ledger.queue_depth)
        self._stats = Stats(self._store.engine)
        if settings.redis_url:
            self._limiter = RedisRateLimiter(
                settings.redis_url,
                failure_policy=settings.redis_failure_policy,
                on_failure=self._metrics.limiter_failures.inc,
            )
        else:
            self._limiter = MemoryRateLimiter()
        self._auth = Authenticator(
            self.admin_key,
            StoreDirectory(self._store, self.secret_box),
            admin_can_infer=settings.admin_can_infer,
            unknown_keys_cached=settings.auth_unknown_keys_cached,
            failures_per_minute=settings.auth_failures_per_minute,
        )
        context = ProviderContext(
            catalog=self.catalog,
            data_dir=settings.data_dir,
            show_progress=settings.show_progress,
            upstream_max_connections=settings.upstream_max_connections,
        )
        await self.providers.start(context)
        self._service = self._request_service()
        if settings.bootstrap_app:
            self.bootstrap_key = await self._bootstrap(settings.data_dir / BOOTSTRAP_KEY_FILE)

    def _request_service(self) -> GenerationService:
        observers: list[Observer] = [
            LedgerObserver(self.ledger),
            MetricsObserver(self.metrics),
            BudgetObserver(self.budget),
            HealthObserver(self.planner),
            StickyObserver(self.planner),
            LimiterObserver(self.limiter),
        ]
        return GenerationService(
            planner=self.planner,
            budget=self.budget,
            limiter=self.limiter,
            ledger=self.ledger,
            observers=observers,
            log_content=self.settings.log_content,
            keepalive_s=self.settings.keepalive_interval_s,
            operator_keys=OperatorKeys.from_environment(self.catalog.providers.values()),
        )

    def _budget_guard(self, store: Store) -> BudgetGuard:
        unflushed = UnflushedSpend()
        ledger_spend = LedgerSpend(store.key_spend, unflushed)
        backend: SpendBackend = MemoryBudget(ledger_spend)
        if self.settings.redis_url:
            backend = RedisBudget(
                RedisClient(self.settings.redis_url, timeout_s=1.0),
                ledger_spend,
                fail_open=self.settings.redis_failure_policy == "open",
                fallback=MemoryBudget(ledger_spend),
            )
        return BudgetGuard(backend, ledger_spend, unflushed)

    async def _insert_rows(self, rows: Sequence[Generation]) -> None:
        await self.store.insert_generations(rows)
        self.budget.flushed(rows)  # written: the ledger's sums now count them

    async def _bootstrap(self, key_file: Path) -> str | None:
        """On a fresh install, an app "default" with the embedded model, so the first curl works.

        Its key is kept in the data dir (like the admin key); returned only when made here, so
        later starts say where it is instead of printing it.
        """
        if await self.store.list_apps():
            return None
        if self.catalog.find(BOOTSTRAP_MODEL) is None:
            return None
        try:
            app = await self.store.create_app(BOOTSTRAP_APP)
        except Conflict:  # another replica made it first
            return None
        _, _, plain = await self.store.attach_model(app.id, BOOTSTRAP_MODEL, "INFERENCE")
        write_private(key_file, plain + "\n")
        log.info("created app %r with %s attached", BOOTSTRAP_APP, BOOTSTRAP_MODEL)
        return plain

    async def close(self) -> None:
        """Stop taking work, write every queued ledger row and response, then release all."""
        if self._ledger is not None:
            await self._ledger.close()
        if self._responses is not None:
            await self._responses.close()
        await self.providers.close()
        if self._limiter is not None:
            await self._limiter.close()
        if self._budget is not None:
            await self._budget.close()
        if self._store is not None:
            await self._store.close()
