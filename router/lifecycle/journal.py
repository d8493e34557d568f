"""A request's decisions and rewards, written to the store together when the request ends.

Deciding and learning happen at once, in memory; the rows wait in the journal and go to the
store in one transaction with the request's outcome (one commit instead of one per row). A
journal is written exactly once: completed, failed, or abandoned.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from features.embedding import Vector
from features.errors import ConflictError, SignalrouteError, StoreUnavailableError
from store import decisions as decision_log
from store import embeddings as embedding_store
from store import requests as request_log
from store import rewards as reward_log
from store.database import Database

if TYPE_CHECKING:
    from router.lifecycle.spool import JournalSpool

log = logging.getLogger("signalroute.journal")


@dataclass(frozen=True)
class DecisionRow:
    decision_id: str
    stage: str
    context: Mapping[str, Any]
    arms: tuple[str, ...]
    chosen_arm: str
    probability: float
    pmf: Mapping[str, float]
    policy_name: str
    policy_version: int


@dataclass(frozen=True)
class RewardRow:
    decision_id: str
    value: float
    source: str
    idempotency_key: str
    policy_update: int | None = None


@dataclass(frozen=True)
class Completed:
    output: str
    model: str
    cost_usd: float
    latency_ms: float


@dataclass(frozen=True)
class Failed:
    error: str
    model: str | None
    latency_ms: float


@dataclass(frozen=True)
class RequestRow:
    """The request itself, when the store could not take it as it arrived."""

    messages: tuple[Mapping[str, Any], ...]
    params: Mapping[str, Any]
    session_id: str | None
    api_key_id: str | None


@dataclass
class Journal:
    """Rows of one request waiting to be written."""

    request_id: str
    tenant: str
    user_id: str | None
    decisions: list[DecisionRow] = field(default_factory=list)
    rewards: list[RewardRow] = field(default_factory=list)
    written: bool = False
    request: RequestRow | None = None

    def decision(self, row: DecisionRow) -> None:
        self.decisions.append(row)

    def reward(self, row: RewardRow) -> None:
        self.rewards.append(row)


async def write(
    database: Database,
    journal: Journal,
    outcome: Completed | Failed,
    embedding: Vector | None = None,
) -> None:
    """Write the journal's rows and the request's outcome in one transaction.

    Rewards are recorded by idempotency key, so writing a journal again after a failure
    part-way records nothing twice.
    """
    async with database.connection() as conn:
        if journal.request is not None:
            await request_log.insert_request(
                conn,
                request_id=journal.request_id,
                messages=list(journal.request.messages),
                params=journal.request.params,
                tenant=journal.tenant,
                user_id=journal.user_id,
                session_id=journal.request.session_id,
                api_key_id=journal.request.api_key_id,
            )
        for row in journal.decisions:
            await decision_log.insert_decision(
                conn,
                decision_id=row.decision_id,
                request_id=journal.request_id,
                stage=row.stage,
                context=row.context,
                arms=list(row.arms),
                chosen_arm=row.chosen_arm,
                probability=row.probability,
                pmf=row.pmf,
                policy_name=row.policy_name,
                policy_version=row.policy_version,
            )
        for reward in journal.rewards:
            await reward_log.record_reward(
                conn,
                decision_id=reward.decision_id,
                value=reward.value,
                source=reward.source,
                idempotency_key=reward.idempotency_key,
                policy_update=reward.policy_update,
            )
        if isinstance(outcome, Completed):
            await request_log.complete_request(
                conn,
                journal.request_id,
                output=outcome.output,
                model=outcome.model,
                cost_usd=outcome.cost_usd,
                latency_ms=outcome.latency_ms,
            )
            if embedding is not None and embedding.any():
                await embedding_store.insert_embedding(
                    conn,
                    request_id=journal.request_id,
                    tenant=journal.tenant,
                    user_id=journal.user_id,
                    embedding=embedding,
                )
        else:
            await request_log.fail_request(
                conn,
                journal.request_id,
                error=outcome.error,
                model=outcome.model,
                latency_ms=outcome.latency_ms,
            )
    journal.written = True


class JournalWriter:
    """Writes journals in the background, so a response does not wait for the commit.

    Readers that need a request's rows (its trace, feedback on it) first ``wait`` for its
    pending write; shutdown ``drain``s every pending write before the store closes. When the
    store is down, a journal goes to the durable ``spool`` on local disk instead, and
    ``flush_spool`` (run every few seconds by ``run_flusher``) writes it back later.
    """

    def __init__(self, database: Database, spool: JournalSpool | None = None) -> None:
        self._database = database
        self._spool = spool
        self._pending: dict[str, asyncio.Task[None]] = {}
        self._by_decision: dict[str, str] = {}

    def submit(
        self, journal: Journal, outcome: Completed | Failed, embedding: Vector | None = None
    ) -> None:
        """Start writing ``journal``; it counts as written from now on."""
        journal.written = True
        for row in journal.decisions:
            self._by_decision[row.decision_id] = journal.request_id
        task = asyncio.create_task(self._write(journal, outcome, embedding))
        self._pending[journal.request_id] = task

    async def _write(
        self, journal: Journal, outcome: Completed | Failed, embedding: Vector | None
    ) -> None:
        try:
            await write(self._database, journal, outcome, embedding)
        except StoreUnavailableError as exc:
            if self._spool is None:
                log.error("request %s: journal lost: %s", journal.request_id, exc.message)
            else:
                self._spool.save(journal, outcome, embedding)
                log.warning("request %s: store down, journal spooled", journal.request_id)
        except SignalrouteError as exc:
            log.error("request %s: journal not written: %s", journal.request_id, exc.message)
        finally:
            self._pending.pop(journal.request_id, None)
            for row in journal.decisions:
                self._by_decision.pop(row.decision_id, None)

    async def wait(self, request_id: str | None = None, decision_id: str | None = None) -> None:
        """Return once the request's (or decision's request's) rows are in the store."""
        if request_id is None and decision_id is not None:
            request_id = self._by_decision.get(decision_id)
        task = self._pending.get(request_id) if request_id is not None else None
        if task is not None:
            await asyncio.shield(task)

    @property
    def pending(self) -> int:
        return len(self._pending)

    @property
    def spooled(self) -> int:
        return self._spool.count() if self._spool is not None else 0

    async def drain(self) -> None:
        """Wait for every pending write."""
        while self._pending:
            await asyncio.gather(*list(self._pending.values()), return_exceptions=True)

    async def flush_spool(self) -> int:
        """Write spooled journals back, oldest first; stop at the first store failure.
        Returns how many were written."""
        if self._spool is None:
            return 0
        written = 0
        for path in self._spool.entries():
            journal, outcome, embedding = self._spool.load(path)
            try:
                await write(self._database, journal, outcome, embedding)
            except StoreUnavailableError:
                break
            except ConflictError:
                log.warning("spooled journal %s was written before; dropping it", path.name)
            self._spool.remove(path)
            written += 1
        if written:
            log.info("wrote %d spooled journal(s) back to the store", written)
        return written

    async def run_flusher(self, interval_s: float = 2.0) -> None:
        """Flush the spool every ``interval_s`` until cancelled."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.flush_spool()
            except SignalrouteError as exc:
                log.warning("spool flush failed: %s", exc.message)
