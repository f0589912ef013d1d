"""ResponseArchive: the Responses API's stored responses, written off the request path.

`save()` queues a response on a BatchWriter (the ledger's writer, over this row type), which
inserts batches in the background and retries a failed one rather than drop it; `close()`
writes what is still queued. `get()` and `delete()` see queued responses too, so a
continuation sent the moment its predecessor finished finds it. A background task deletes
expired responses every `purge_every_s`.

Each response is its app's: another app's id reads as not found. `app_id` None is the
admin's own calls, which see only each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from modelyard.ledger.writer import BatchWriter
from modelyard.store.records import StoredResponse
from modelyard.store.response_ids import issued_at
from modelyard.store.store import Store

log = logging.getLogger(__name__)

PURGE_EVERY_S = 600.0
# Far fewer than the ledger's 100,000: a response holds its whole conversation.
MAX_PENDING = 10_000
# How long after its id was made a response missing everywhere may still be in another
# process's write queue (a batch is written within 50 ms unless the database is slow).
SETTLE_S = 2.0
SETTLE_POLL_S = 0.02


def utc_now() -> datetime:
    return datetime.now(UTC)


class ResponseArchive:
    def __init__(
        self,
        store: Store,
        *,
        retention: timedelta,
        enabled: bool,
        clock: Callable[[], datetime] = utc_now,
        purge_every_s: float = PURGE_EVERY_S,
        batch_delay_s: float = 0.05,
        max_retry_delay_s: float = 5.0,
        max_pending: int = MAX_PENDING,
        settle_s: float = SETTLE_S,
    ) -> None:
        self.retention = retention
        # Off (MODELYARD_STORE_RESPONSES=0): nothing new is kept and nothing is served;
        # what was kept before still goes at its expiry, and can still be deleted.
        self.enabled = enabled
        self._store = store
        self._clock = clock
        self._purge_every_s = purge_every_s
        self._settle_s = settle_s
        self._writer = BatchWriter[StoredResponse](
            self._write,
            batch_size=100,
            max_delay_s=batch_delay_s,
            max_retry_delay_s=max_retry_delay_s,
            max_pending=max_pending,
            name="responses",
        )
        # A delete and a batch insert never interleave: the batch is filtered against the
        # ids deleted while it waited, then inserted, under the lock.
        self._lock = asyncio.Lock()
        self._deleted_in_flight: set[str] = set()
        self._purger: asyncio.Task[None] | None = None

    @property
    def queue_depth(self) -> int:
        return self._writer.queue_depth

    def now(self) -> datetime:
        return self._clock()

    async def start(self) -> None:
        self._writer.start()
        self._purger = asyncio.create_task(self._purge_periodically(), name="responses-purge")

    async def close(self) -> None:
        """Stop purging, then write everything still queued."""
        if self._purger is not None:
            self._purger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._purger
            self._purger = None
        await self._writer.close()

    async def room(self) -> None:
        """Return once the queue has room (at once unless the database has been away)."""
        await self._writer.room()

    def save(self, item: StoredResponse) -> None:
        """Queue the response to be written; never waits."""
        if self.enabled:
            self._writer.record(item)

    async def get(self, app_id: str | None, response_id: str) -> StoredResponse | None:
        """The response, if this app may see it. One made moments ago that is nowhere yet
        is waited for (up to `settle_s`): another worker or replica may have it queued."""
        found = await self._get_once(app_id, response_id)
        made = issued_at(response_id)
        if found is not None or made is None or not self.enabled:
            return found
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(self._settle_s, made + self._settle_s - time.time())
        while found is None and loop.time() < deadline:
            await asyncio.sleep(SETTLE_POLL_S)
            found = await self._get_once(app_id, response_id)
        return found

    async def _get_once(self, app_id: str | None, response_id: str) -> StoredResponse | None:
        if not self.enabled:
            return None
        now = self._clock()
        queued = self._writer.pending(response_id)
        if queued is not None and response_id not in self._deleted_in_flight:
            return queued if self._visible(queued, app_id, now) else None
        return await self._store.get_response(app_id, response_id, now)

    async def delete(self, app_id: str | None, response_id: str) -> bool:
        if await self._delete_once(app_id, response_id):
            return True
        # Made moments ago elsewhere and not written yet: once it is, delete it.
        if issued_at(response_id) is not None and await self.get(app_id, response_id):
            return await self._delete_once(app_id, response_id)
        return False

    async def _delete_once(self, app_id: str | None, response_id: str) -> bool:
        async with self._lock:
            now = self._clock()
            queued = self._writer.pending(response_id)
            if queued is not None and response_id not in self._deleted_in_flight:
                if not self._visible(queued, app_id, now):
                    return False
                if self._writer.writing(response_id):
                    # Its batch waits for the lock: it leaves this id out when it runs.
                    self._deleted_in_flight.add(response_id)
                else:
                    self._writer.discard(response_id)
                # Also delete a copy already in the database (a retried batch's).
                await self._store.delete_response(app_id, response_id, now)
                return True
            return await self._store.delete_response(app_id, response_id, now)

    async def purge_expired(self) -> int:
        """Delete the expired responses from the database; how many went."""
        return await self._store.purge_responses(self._clock())

    async def _write(self, batch: Sequence[StoredResponse]) -> None:
        async with self._lock:
            await self._store.insert_responses(
                [r for r in batch if r.id not in self._deleted_in_flight]
            )
            # Written (or left out): those ids will not come back.
            self._deleted_in_flight.difference_update(r.id for r in batch)

    async def _purge_periodically(self) -> None:
        while True:
            try:
                purged = await self.purge_expired()
            except Exception:
                log.exception("purging expired responses failed; trying again later")
            else:
                if purged:
                    log.info("purged %d expired responses", purged)
            await asyncio.sleep(self._purge_every_s)

    @staticmethod
    def _visible(item: StoredResponse, app_id: str | None, now: datetime) -> bool:
        return item.app_id == app_id and item.expires_at > now
