"""A request's decisions and rewards, written to the store together when the request ends.

Deciding and learning happen at once, in memory; the rows wait in the journal and go to the
store with the request's outcome, in one transaction with the other journals that ended
meanwhile (``JournalWriter``: a group commit). A journal is written exactly once: completed,
failed, or abandoned.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from features.embedding import Vector
from features.errors import ConflictError, SignalrouteError, StoreUnavailableError
from learner.context import Context
from router import tracing
from store.batches import Batch, write_batch
from store.database import Database

if TYPE_CHECKING:
    from router.trace import DecisionTrace

log = logging.getLogger("signalroute.journal")


class ContextJson(Mapping[str, Any]):
    """A decision's context as its JSON object, rendered when first read: the journal is
    read by the writer once the answer is out, so the decision does not wait for it. A
    context is not changed once drawn on (a stage that adds to one builds a new one)."""

    __slots__ = ("_context", "_json")

    def __init__(self, context: Context) -> None:
        self._context = context
        self._json: dict[str, Any] | None = None

    def _rendered(self) -> dict[str, Any]:
        if self._json is None:
            self._json = self._context.to_json()
        return self._json

    def __getitem__(self, key: str) -> Any:
        return self._rendered()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._rendered())

    def __len__(self) -> int:
        return len(self._rendered())

    def __repr__(self) -> str:
        return repr(self._rendered())


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
    outcome: str | None = None
    """What became of it, as the trace says (None until the request's end is known)."""
    masked: Mapping[str, str] | None = None
    details: Mapping[str, Any] | None = None
    cost_usd: float | None = None
    latency_ms: float | None = None


@dataclass(frozen=True)
class RewardRow:
    decision_id: str
    value: float
    source: str
    idempotency_key: str
    policy_update: int | None = None
    policy_name: str | None = None
    """The policy that learned it as ``policy_update`` (a prior's name: held for the tenant)."""


@dataclass(frozen=True)
class Completed:
    output: str
    model: str
    cost_usd: float
    latency_ms: float
    trace: Mapping[str, Any] | None = None
    """The answer's components, assessment and timings, as its response shows them."""


@dataclass(frozen=True)
class Failed:
    error: str
    model: str | None
    latency_ms: float


@dataclass(frozen=True)
class Delegated:
    """A decide-only request (``POST /route``): the router chose ``model`` and the caller
    runs it; the outcome comes back, if at all, as feedback."""

    model: str
    latency_ms: float


Outcome = Completed | Failed | Delegated
"""How a request ended, as its journal records it."""


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

    def settled(self, traces: Sequence[DecisionTrace]) -> None:
        """Keep each decision's outcome, masked arms and details as its trace shows them."""
        by_id = {t.decision_id: t for t in traces}
        self.decisions = [
            row
            if row.decision_id not in by_id
            else replace(
                row,
                outcome=by_id[row.decision_id].outcome,
                masked=dict(by_id[row.decision_id].masked),
                details=dict(by_id[row.decision_id].details),
                cost_usd=by_id[row.decision_id].cost_usd,
                latency_ms=by_id[row.decision_id].latency_ms,
            )
            for row in self.decisions
        ]


@dataclass(frozen=True)
class PendingRequest:
    """A request accepted for routing, waiting in the writer's queue to be logged."""

    request_id: str
    tenant: str
    user_id: str | None
    row: RequestRow


Entry = tuple[Journal, Outcome, Vector | None]
"""A finished request's journal, its outcome and its query embedding (if stored)."""


def _add_request(
    batch: Batch, request_id: str, tenant: str, user_id: str | None, row: RequestRow
) -> None:
    batch.request(
        request_id=request_id,
        tenant=tenant,
        user_id=user_id,
        session_id=row.session_id,
        messages=row.messages,
        params=row.params,
        api_key_id=row.api_key_id,
    )


def _add_journal(
    batch: Batch, journal: Journal, outcome: Outcome, embedding: Vector | None
) -> None:
    if journal.request is not None:
        _add_request(batch, journal.request_id, journal.tenant, journal.user_id, journal.request)
    for row in journal.decisions:
        batch.decision(
            decision_id=row.decision_id,
            request_id=journal.request_id,
            stage=row.stage,
            context=row.context,
            arms=row.arms,
            chosen_arm=row.chosen_arm,
            probability=row.probability,
            pmf=row.pmf,
            policy_name=row.policy_name,
            policy_version=row.policy_version,
            outcome=row.outcome,
            masked=row.masked,
            details=row.details,
            cost_usd=row.cost_usd,
            latency_ms=row.latency_ms,
        )
    for reward in journal.rewards:
        batch.reward(
            decision_id=reward.decision_id,
            value=reward.value,
            source=reward.source,
            idempotency_key=reward.idempotency_key,
            policy_update=reward.policy_update,
            policy_name=reward.policy_name,
        )
    if isinstance(outcome, Completed):
        batch.complete(
            journal.request_id,
            output=outcome.output,
            model=outcome.model,
            cost_usd=outcome.cost_usd,
            latency_ms=outcome.latency_ms,
            trace=outcome.trace,
        )
    elif isinstance(outcome, Delegated):
        batch.delegate(journal.request_id, model=outcome.model, latency_ms=outcome.latency_ms)
    else:
        batch.fail(
            journal.request_id,
            error=outcome.error,
            model=outcome.model,
            latency_ms=outcome.latency_ms,
        )
    # An answered or delegated query is a neighbour of later ones (a delegated one counts
    # once its feedback comes).
    if not isinstance(outcome, Failed) and embedding is not None and embedding.any():
        batch.embedding(
            request_id=journal.request_id,
            tenant=journal.tenant,
            user_id=journal.user_id,
            embedding=embedding,
        )


async def write_all(
    database: Database,
    requests: Sequence[PendingRequest],
    entries: Sequence[Entry],
    *,
    root_span: bool = False,
) -> None:
    """Log ``requests`` and write every journal's rows and outcome, in one transaction
    (traced as its own trace with ``root_span``: a group commit serves many requests).

    Rewards are recorded by idempotency key, so writing a journal again after a failure
    part-way records nothing twice.
    """
    batch = Batch()
    for pending in requests:
        _add_request(batch, pending.request_id, pending.tenant, pending.user_id, pending.row)
    for journal, outcome, embedding in entries:
        _add_journal(batch, journal, outcome, embedding)
    if len(batch):
        rows = tracing.store_attributes("write_batch", batch.counts())
        with tracing.span("signalroute.store.write", rows, root=root_span):
            async with database.connection() as conn:
                await write_batch(conn, batch)
    for journal, _, _ in entries:
        journal.written = True


async def write(
    database: Database,
    journal: Journal,
    outcome: Outcome,
    embedding: Vector | None = None,
) -> None:
    """Write one journal's rows and the request's outcome in one transaction."""
    await write_all(database, (), [(journal, outcome, embedding)])


class Spool(Protocol):
    """Durable local storage for journals the store could not take (``JournalSpool``):
    each entry is one journal with its outcome, listed oldest first."""

    def save(self, journal: Journal, outcome: Outcome, embedding: Vector | None) -> Path: ...

    def entries(self) -> list[Path]: ...

    def count(self) -> int: ...

    def load(self, path: Path) -> tuple[Journal, Outcome, Vector | None]: ...

    def remove(self, path: Path) -> None: ...

    def set_aside(self, path: Path) -> Path: ...


def _drop_carried_row(journal: Journal) -> bool:
    """Drop the request row ``journal`` carries, if any, and say whether it did. A journal
    carries its request's row when the store's answer to that row's commit never came back,
    though the row may have got in: a conflict on writing the journal may then be the row's
    alone, and the journal is worth writing again without it."""
    if journal.request is None:
        return False
    journal.request = None
    return True


class JournalWriter:
    """Logs requests and writes journals in the background, many per transaction.

    Requests are logged as they are accepted (``log_request``) and journals written as they
    end (``submit``), in arrival order, so a request's row always goes in before its
    decisions. Whatever queued up while one transaction was in flight goes into the next one
    (a group commit: under load, one commit carries dozens of requests; alone, a request is
    written at once). A transaction that fails on one bad row is written again one request at
    a time, so only that row is lost (and logged).

    Readers that need a request's rows (its trace, feedback on it) first ``wait`` for them;
    shutdown ``drain``s the queue before the store closes. When the store is down, a journal
    goes to the durable ``spool`` on local disk instead, carrying its request's row when that
    could not be logged either, and ``flush_spool`` (run every few seconds by
    ``run_flusher``) writes it back later.

    The queue is bounded by ``max_backlog`` items (rows and journals waiting for their
    transaction): past it, new requests wait in ``admit``, first come first in, until the
    writer has taken the queue below the bound. Under a load the store cannot keep up with,
    requests then wait at the door instead of piling up unwritten rows in memory, where a
    crash would lose them all and whose memory grows without end. The bound is not exact:
    requests already admitted still queue their journals, and a request let in queues its
    row only once its signals are gathered (at once when the history index answers; after
    the store's look-up otherwise), so the queue may pass the bound by what those add.
    While the store is down (a write failed on it, or took past ``write_timeout_s``, and
    no write or flush has succeeded since), whatever is queued goes to the spool in one go,
    without asking the store again for each batch, so the bound does not hold requests to
    the pace of failing transactions.
    """

    def __init__(
        self,
        database: Database,
        spool: Spool | None = None,
        *,
        max_batch: int = 256,
        linger_s: float = 0.0,
        max_backlog: int | None = None,
        write_timeout_s: float | None = None,
    ) -> None:
        """``max_backlog``: the queued items past which ``admit`` waits; None: unbounded.
        ``write_timeout_s``: how long a transaction may take before the store counts as
        down (its rows spooled); None: as long as it takes. Raises ValueError for a bound
        below 1 or a timeout not above 0."""
        if max_backlog is not None and max_backlog < 1:
            raise ValueError(f"max_backlog must be at least 1 (or None), got {max_backlog}")
        if write_timeout_s is not None and not write_timeout_s > 0:
            raise ValueError(f"write_timeout_s must be above 0 (or None), got {write_timeout_s}")
        self._write_timeout_s = write_timeout_s
        self._database = database
        self._spool = spool
        self._max_batch = max_batch
        self._linger_s = linger_s
        self._max_backlog = max_backlog
        self._waiters: deque[asyncio.Future[None]] = deque()
        """Requests waiting in ``admit``, in order of arrival."""
        self._waking = False
        self.admissions_waited = 0
        """Requests that waited in ``admit`` for the queue to come below the bound."""
        self._store_down = False
        """Whether the last write to the store failed on it being unavailable."""
        self._urgent = asyncio.Event()
        self._queue: deque[tuple[PendingRequest | Entry, asyncio.Future[None]]] = deque()
        self._pending: dict[str, asyncio.Future[None]] = {}
        self._held: dict[str, asyncio.Future[None]] = {}
        self._by_decision: dict[str, str] = {}
        self._unlogged: dict[str, RequestRow] = {}
        self._task: asyncio.Task[None] | None = None

    @property
    def backlog(self) -> int:
        """Rows and journals queued, not counting the batch being written."""
        return len(self._queue)

    @property
    def full(self) -> bool:
        """Whether the queue is at ``max_backlog``: a new request waits in ``admit``."""
        return self._max_backlog is not None and len(self._queue) >= self._max_backlog

    @property
    def admitting_at_once(self) -> bool:
        """Whether ``admit`` returns at once: the queue is below the bound and nobody waits."""
        return not self._waiters and not self.full

    async def admit(self) -> None:
        """Return once this request's turn has come and the queue is below ``max_backlog``
        (at once, most of the time); while requests wait, the writer writes without
        lingering."""
        if self.admitting_at_once:
            return
        self.admissions_waited += 1
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._urgent.set()
        self._wake()  # the queue may have room already: then the first in line goes now
        try:
            await waiter
        except BaseException:  # cancelled (its client went): its turn passes on
            if waiter.done() and not waiter.cancelled():
                self._wake()
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            raise

    def _wake(self) -> None:
        """Let the first waiting request in when the queue has room, and, once it has had
        its turn on the loop (and queued its row), see about the next."""
        if self._waking:
            return
        while self._waiters and not self.full:
            waiter = self._waiters.popleft()
            if waiter.done():  # cancelled while waiting
                continue
            waiter.set_result(None)
            self._waking = True
            asyncio.get_running_loop().call_soon(self._woken)
            return

    def _woken(self) -> None:
        self._waking = False
        self._wake()

    def log_request(self, request: PendingRequest) -> None:
        """Queue an accepted request's row."""
        self._enqueue(request.request_id, request)

    def hold(self, journal: Journal) -> None:
        """``journal``'s answer goes out before the journal is submitted: until it is,
        readers of its rows (``wait``, by its request or any of its decisions) wait for it."""
        self._held[journal.request_id] = asyncio.get_running_loop().create_future()
        for row in journal.decisions:
            self._by_decision[row.decision_id] = journal.request_id

    def submit(self, journal: Journal, outcome: Outcome, embedding: Vector | None = None) -> None:
        """Queue ``journal``; it counts as written from now on."""
        journal.written = True
        for row in journal.decisions:
            self._by_decision[row.decision_id] = journal.request_id
        self._urgent.set()  # the request is over: its rows go now
        self._enqueue(journal.request_id, (journal, outcome, embedding))
        self.release(journal.request_id)

    def release(self, request_id: str) -> None:
        """End a ``hold``: readers of the request's rows stop waiting for its hand-off (done
        by ``submit``; called again, or for a journal never submitted, it does nothing more)."""
        held = self._held.pop(request_id, None)
        if held is not None and not held.done():
            held.set_result(None)

    def _enqueue(self, request_id: str, item: PendingRequest | Entry) -> None:
        future = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        self._pending[request_id] = future  # a request's last queued item: written last
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        try:
            await self._write_queue()
        finally:
            self._wake()  # nothing left queued: whoever still waits comes in

    async def _write_queue(self) -> None:
        while self._queue:
            if not self._urgent.is_set() and self._linger_s > 0 and not self._waiters:
                await self._linger()
            self._urgent.clear()
            spooling = self._store_down and self._spool is not None  # all of it, at once
            count = len(self._queue) if spooling else min(self._max_batch, len(self._queue))
            taken = [self._queue.popleft() for _ in range(count)]
            self._wake()  # requests waiting at the door come in, as the room allows
            items = [item for item, _ in taken]
            try:
                if spooling:
                    self._spool_all(items)
                else:
                    await self._write(items)
            except Exception:  # never leave a waiter hanging
                log.exception("journal writer failed on %d queued item(s)", len(items))
            finally:
                for item, future in taken:
                    future.set_result(None)
                    request_id = _request_id(item)
                    if self._pending.get(request_id) is future:
                        del self._pending[request_id]
                for item in items:
                    if not isinstance(item, PendingRequest):
                        for row in item[0].decisions:
                            self._by_decision.pop(row.decision_id, None)

    async def _linger(self) -> None:
        """Wait up to ``linger_s`` before writing rows of requests still running: their
        journal usually ends them within it, and then one transaction carries both instead of
        two, the first of which would have run beside the model call."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._urgent.wait(), self._linger_s)

    def _split(
        self, items: list[PendingRequest | Entry]
    ) -> tuple[list[PendingRequest], list[Entry]]:
        """Queued rows and journals apart; a journal whose row the store did not take
        before carries it."""
        requests = [item for item in items if isinstance(item, PendingRequest)]
        entries = [item for item in items if not isinstance(item, PendingRequest)]
        for journal, _, _ in entries:
            unlogged = self._unlogged.pop(journal.request_id, None)
            if unlogged is not None and journal.request is None:
                journal.request = unlogged
        return requests, entries

    async def _write(self, items: list[PendingRequest | Entry]) -> None:
        requests, entries = self._split(items)
        try:
            await self._in_time(write_all(self._database, requests, entries, root_span=True))
        except StoreUnavailableError as exc:
            self._store_down = True
            self._keep_unlogged(requests, entries)
            for entry in entries:
                self._spool_or_lose(entry, exc)
            return
        except SignalrouteError as exc:
            self._store_down = False  # it answered, if only to refuse
            if len(items) == 1:
                item = items[0]
                if (
                    isinstance(exc, ConflictError)
                    and not isinstance(item, PendingRequest)
                    and _drop_carried_row(item[0])
                ):
                    await self._write(items)
                    return
                log.error("request %s: not written: %s", _request_id(item), exc.message)
                return
            log.warning("a batch of %d failed (%s); writing one by one", len(items), exc.message)
            for item in items:
                await self._write([item])
        else:
            self._store_down = False

    async def _in_time(self, writing: Coroutine[Any, Any, None]) -> None:
        """Run a transaction; StoreUnavailableError when it takes past the write timeout
        (a store that hangs counts as down; what it did not commit is not committed)."""
        try:
            await asyncio.wait_for(writing, self._write_timeout_s)  # None: no time limit
        except TimeoutError as exc:
            raise StoreUnavailableError(
                f"the store did not answer a write within {self._write_timeout_s:g} s"
            ) from exc

    def _spool_all(self, items: list[PendingRequest | Entry]) -> None:
        """While the store is down: queued journals to the spool, queued rows kept for the
        journals that will carry them, without a transaction that would fail again."""
        requests, entries = self._split(items)
        self._keep_unlogged(requests, entries)
        down = StoreUnavailableError("the store was down at the last write")
        for entry in entries:
            self._spool_or_lose(entry, down)

    def _keep_unlogged(self, requests: list[PendingRequest], entries: list[Entry]) -> None:
        """Requests the store did not take: their journal carries them (to the spool)."""
        journals = {journal.request_id: journal for journal, _, _ in entries}
        for pending in requests:
            journal = journals.get(pending.request_id)
            if journal is None:
                self._unlogged[pending.request_id] = pending.row
            elif journal.request is None:
                journal.request = pending.row

    def _spool_or_lose(self, entry: Entry, exc: StoreUnavailableError) -> None:
        journal, outcome, embedding = entry
        if self._spool is None:
            log.error("request %s: journal lost: %s", journal.request_id, exc.message)
        else:
            self._spool.save(journal, outcome, embedding)
            log.warning("request %s: store down, journal spooled", journal.request_id)

    async def wait(self, request_id: str | None = None, decision_id: str | None = None) -> None:
        """Return once the request's (or decision's request's) rows are in the store."""
        if request_id is None and decision_id is not None:
            request_id = self._by_decision.get(decision_id)
        held = self._held.get(request_id) if request_id is not None else None
        if held is not None:  # its answer is out, its journal not yet submitted
            await asyncio.shield(held)
        future = self._pending.get(request_id) if request_id is not None else None
        if future is not None:
            self._urgent.set()  # somebody reads them: no lingering
            await asyncio.shield(future)

    @property
    def pending(self) -> int:
        return len(self._pending)

    @property
    def spooled(self) -> int:
        return self._spool.count() if self._spool is not None else 0

    async def drain(self) -> None:
        """Wait until every queued request and journal is written (or spooled)."""
        while self._task is not None and not self._task.done():
            self._urgent.set()
            await asyncio.shield(self._task)

    async def flush_spool(self) -> int:
        """Write spooled journals back, oldest first; stop at the first store failure.
        Returns how many were written. A journal the store refuses for another reason (its
        request row is neither in the store nor carried: a store replaced since) is set
        aside (``JournalSpool.set_aside``), not retried forever or raised into the start."""
        if self._spool is None:
            return 0
        written = 0
        for path in self._spool.entries():
            journal, outcome, embedding = self._spool.load(path)
            try:
                await self._write_back(journal, outcome, embedding)
            except StoreUnavailableError:
                break
            except ConflictError:
                log.warning("spooled journal %s was written before; dropping it", path.name)
            except SignalrouteError as exc:
                kept = self._spool.set_aside(path)
                log.error(
                    "spooled journal %s refused (%s); kept as %s", path.name, exc.message, kept
                )
                continue
            self._spool.remove(path)
            self._store_down = False  # it is back: the queue goes to it again
            written += 1
        if written:
            log.info("wrote %d spooled journal(s) back to the store", written)
        return written

    async def _write_back(
        self, journal: Journal, outcome: Outcome, embedding: Vector | None
    ) -> None:
        """Write a spooled journal (again without its carried request row when that row may
        be the conflict: ``_drop_carried_row``). Raises ConflictError when the journal itself
        was written before."""
        try:
            await write(self._database, journal, outcome, embedding)
        except ConflictError:
            if not _drop_carried_row(journal):
                raise
            await write(self._database, journal, outcome, embedding)

    async def run_flusher(self, interval_s: float = 2.0) -> None:
        """Flush the spool every ``interval_s`` until cancelled."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.flush_spool()
            except SignalrouteError as exc:
                log.warning("spool flush failed: %s", exc.message)


def _request_id(item: PendingRequest | Entry) -> str:
    return item.request_id if isinstance(item, PendingRequest) else item[0].request_id
