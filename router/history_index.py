"""The historical look-up answered in process: recent query embeddings kept from the store.

``HistoryIndex`` holds a ``features.neighbour_index.NeighbourIndex`` of the most recent query
embeddings with the pre-generation outcomes they carry, and keeps it fresh from the store,
which stays the store of record: ``load`` reads the most recent rows at start-up, and
``run_refresher`` reads, every interval, the rows inserted or updated since the last read
(``store.embedding_changes``: new requests of every replica, and rows whose outcomes a
decision or reward refreshed). The process's own requests go in at once (``note``). A
look-up then costs no round trip; it sees the store as it was at most one refresh interval
(plus the read itself) ago, and its own process's requests as soon as they ended.

What differs from the store's look-up: the search is exact, where the store answers from its
HNSW index (approximate on large tables), and it covers the ``capacity`` most recent rows of
all tenants, not every stored row. Rows are never deleted from ``query_embeddings``, so the
copy has no deletions to follow.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Hashable, Iterable
from datetime import UTC, datetime, timedelta

from threadpoolctl import threadpool_limits

from features.errors import SignalrouteError
from features.neighbour_index import IndexedOutcome, NeighbourIndex, PastDecision, Vector
from router.lifecycle.journal import Journal
from router.lifecycle.stages import PRE_GENERATION
from store import embedding_changes
from store.database import Database
from store.records import EMBEDDING_DIM, StoredEmbedding

log = logging.getLogger("signalroute.history_index")


def one_blas_thread() -> Callable[[], None]:
    """Limit this process's BLAS to one thread; return what restores the limit it had.

    A search is one matrix-vector product of a few MiB. OpenBLAS splits it across threads
    that, on cores shared with Postgres and the other workers, wait for each other: measured
    16 ms instead of 0.4 ms for 4,096 rows on a busy 2-core machine.
    """
    limits = threadpool_limits(limits=1, user_api="blas")
    restore: Callable[[], None] = limits.restore_original_limits
    return restore


class HistoryIndex:
    """An in-process copy of the recent query embeddings, refreshed from ``database``."""

    def __init__(self, database: Database, capacity: int, *, dim: int = EMBEDDING_DIM) -> None:
        self._database = database
        self._index = NeighbourIndex(capacity, dim)
        self._marker: int | None = None
        self.lookups = 0
        """Look-ups answered, for tests and metrics."""
        self.refreshes = 0
        """Refreshes that read the store."""

    @property
    def ready(self) -> bool:
        """Whether ``load`` has run: before it, the copy knows nothing and must not answer."""
        return self._marker is not None

    def __contains__(self, request_id: Hashable) -> bool:
        return request_id in self._index

    @property
    def size(self) -> int:
        return len(self._index)

    @property
    def capacity(self) -> int:
        return self._index.capacity

    async def load(self) -> None:
        """Read the most recent ``capacity`` rows. Raises StoreUnavailableError when the
        store cannot be read."""
        async with self._database.connection(transaction=False) as conn:
            marker = await embedding_changes.change_marker(conn)
            rows = await embedding_changes.recent_embeddings(conn, self._index.capacity)
        self._apply(reversed(rows))
        self._marker = marker
        log.info("history index loaded %d of at most %d rows", self.size, self.capacity)

    async def refresh(self) -> int:
        """Apply the rows changed since the last read; return how many. Raises
        StoreUnavailableError when the store cannot be read (the copy stays as it was)."""
        if self._marker is None:
            await self.load()
            return self.size
        async with self._database.connection(transaction=False) as conn:
            marker, rows = await embedding_changes.changes_since(conn, self._marker)
        self._apply(sorted(rows, key=lambda row: row.created_at))
        self._marker = marker
        self.refreshes += 1
        return len(rows)

    async def run_refresher(self, interval_s: float) -> None:
        """Refresh every ``interval_s`` until cancelled; a failed read is logged and retried."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.refresh()
            except SignalrouteError as exc:
                log.warning("history index not refreshed: %s", exc.message)

    def neighbour_outcomes(
        self,
        embedding: Vector,
        *,
        k: int,
        tenant: str,
        user_id: str | None = None,
        exclude_request_id: Hashable | None = None,
    ) -> list[IndexedOutcome]:
        """As ``store.embeddings.neighbour_outcomes`` at the 'pre' stage, from the copy."""
        self.lookups += 1
        return self._index.outcomes(
            embedding, k=k, tenant=tenant, user_id=user_id, exclude_request_id=exclude_request_id
        )

    def tenant_and_user_outcomes(
        self, embedding: Vector, *, k: int, tenant: str, user_id: str | None
    ) -> tuple[list[IndexedOutcome], list[IndexedOutcome]]:
        """``neighbour_outcomes`` of ``tenant`` and of its ``user_id`` (none without one), from
        one comparison of the embedding with the copy: one look-up."""
        self.lookups += 1
        if user_id is None:
            return self._index.outcomes(embedding, k=k, tenant=tenant), []
        whole, own = self._index.scoped_outcomes(
            embedding, k=k, tenant=tenant, users=(None, user_id)
        )
        return whole, own

    def note(self, journal: Journal, embedding: Vector, now: datetime | None = None) -> None:
        """Hold a request of this process as soon as its journal is handed to the writer, so
        that the process's next requests see it before the store has it (they did, when the
        store answered: the writer commits a journal as the response goes out).

        Its decisions' times are ``now`` (default this process's clock) and each reward is
        the mean of the first of each source, as the store counts them; the next refresh
        replaces the row with what the store holds. A request id that is not a UUID (never
        stored) is skipped.
        """
        try:
            request_id = uuid.UUID(journal.request_id)
        except ValueError:
            return
        now = datetime.now(UTC) if now is None else now
        first: dict[tuple[str, str], float] = {}
        for reward in journal.rewards:
            first.setdefault((reward.decision_id, reward.source), reward.value)
        decisions = []
        for n, row in enumerate(d for d in journal.decisions if d.stage == PRE_GENERATION):
            values = [value for (did, _), value in first.items() if did == row.decision_id]
            decisions.append(
                PastDecision(
                    uuid.UUID(row.decision_id),
                    row.chosen_arm,
                    sum(values) / len(values) if values else None,
                    now + timedelta(microseconds=n),  # in the order they were made
                )
            )
        self._index.put(
            request_id,
            tenant=journal.tenant,
            user_id=journal.user_id,
            embedding=embedding,
            stored_at=now,
            decisions=decisions,
        )

    def _apply(self, rows: Iterable[StoredEmbedding]) -> None:
        for row in rows:
            self._index.put(
                row.request_id,
                tenant=row.tenant,
                user_id=row.user_id,
                embedding=row.embedding,
                stored_at=row.created_at,
                decisions=[
                    PastDecision(decision_id, arm, reward, decided_at)
                    for decision_id, arm, reward, decided_at in zip(
                        row.decision_ids, row.arms, row.rewards, row.decided_at, strict=True
                    )
                ],
            )
