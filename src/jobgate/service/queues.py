"""The store's side of drop-box queues, for the queue door: which job files were claimed
(exactly once: unique on queue, key and version), and by which job."""

from __future__ import annotations

import builtins
import time

from jobgate.spec import JobRecord
from jobgate.store import AsyncStore
from jobgate.store.queue_items import Item, claim, claimed, items, move

__all__ = ["Item", "QueueItems"]


class QueueItems:
    def __init__(self, db: AsyncStore) -> None:
        self._db = db
        self._store = db.sync

    # Blocking, thread-safe: the queue door works in a thread beside its file system.

    def claim_now(self, queue: str, key: str, version: str) -> Item | None:
        """The claim, if this call made it (None: another gateway's)."""
        if not claim(self._store, queue, key, version, ""):
            return None
        return Item(queue, key, version, "", "claimed", time.time())

    def claimed_now(self, queue: str, keys: builtins.list[tuple[str, str]]) -> set[tuple[str, str]]:
        return claimed(self._store, queue, keys)

    def items_now(self, queue: str, state: str | None = None) -> builtins.list[Item]:
        return items(self._store, queue, state)

    def submitted_now(self, item: Item, job_id: str) -> None:
        move(self._store, item, "submitted", job_id)

    def completed_now(self, item: Item) -> None:
        move(self._store, item, "completed", item.job_id)

    def jobs_now(self, job_ids: builtins.list[str]) -> builtins.list[JobRecord | None]:
        return self._store.get_many(job_ids)

    def find_now(self, owner: str, key: str) -> JobRecord | None:
        return self._store.find_by_idempotency_key(owner, key)
