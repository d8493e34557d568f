"""The journal writer logs requests and writes journals many per transaction, loses none of
them to a bad neighbour in its batch, and spools what the store cannot take."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from features.errors import StoreUnavailableError
from learner.context import ArmFeatures, Context
from router.lifecycle.journal import (
    Completed,
    ContextJson,
    DecisionRow,
    Delegated,
    Failed,
    Journal,
    JournalWriter,
    PendingRequest,
    RequestRow,
    RewardRow,
    write_all,
)
from router.lifecycle.spool import JournalSpool
from store import decisions, requests, rewards
from store.database import Database
from store.records import EMBEDDING_DIM, RequestStatus

ROW = RequestRow(
    messages=({"role": "user", "content": "What is 2 + 2?"},),
    params={"temperature": 0.2},
    session_id=None,
    api_key_id=None,
)


def a_journal(request_id: str) -> Journal:
    decision_id = str(uuid.uuid4())
    journal = Journal(request_id=request_id, tenant="acme", user_id="ann")
    journal.decision(
        DecisionRow(
            decision_id=decision_id,
            stage="pre",
            context={"log_tokens": 2.0},
            arms=("small", "large"),
            chosen_arm="small",
            probability=0.8,
            pmf={"small": 0.8, "large": 0.2},
            policy_name="pre",
            policy_version=1,
        )
    )
    journal.reward(
        RewardRow(
            decision_id=decision_id,
            value=0.75,
            source="judge",
            idempotency_key=f"{decision_id}:judge",
            policy_update=3,
        )
    )
    return journal


DONE = Completed(output="4", model="small", cost_usd=0.001, latency_ms=12.0)


class ScriptedDatabase(Database):
    """The test database, counting the transactions tried on it: down while ``down`` is set,
    and, when ``held``, holding each transaction until ``gate`` opens (a store that hangs,
    while it stays shut)."""

    def __init__(self, database: Database, *, down: bool = False, held: bool = False) -> None:
        super().__init__(database._pool, database.url)
        self.down = down
        self.gate = asyncio.Event()
        if not held:
            self.gate.set()
        self.tried = 0

    @asynccontextmanager
    async def connection(self, *, transaction: bool = True) -> AsyncIterator[Any]:
        self.tried += transaction
        if self.down:
            raise StoreUnavailableError("the database is down")
        await self.gate.wait()
        async with super().connection(transaction=transaction) as conn:
            yield conn


async def test_requests_and_journals_queued_together_share_one_transaction(
    database: Database,
) -> None:
    counting = ScriptedDatabase(database)
    writer = JournalWriter(counting)
    ids = [str(uuid.uuid4()) for _ in range(40)]
    journals = [a_journal(request_id) for request_id in ids]
    for request_id, journal in zip(ids, journals, strict=True):
        writer.log_request(PendingRequest(request_id, "acme", "ann", ROW))
        embedding = np.eye(EMBEDDING_DIM, dtype=np.float32)[len(journal.request_id) % 7]
        writer.submit(journal, DONE, embedding)
    assert writer.pending == 40
    await writer.wait(request_id=ids[-1])
    await writer.drain()

    assert counting.tried == 1
    assert writer.pending == 0
    async with database.connection() as conn:
        for request_id, journal in zip(ids, journals, strict=True):
            record = await requests.get_request(conn, request_id)
            assert (record.status, record.output, record.user_id) == (
                RequestStatus.COMPLETED,
                "4",
                "ann",
            )
            logged = await decisions.list_decisions_for_request(conn, request_id)
            assert [str(d.id) for d in logged] == [journal.decisions[0].decision_id]
            recorded = await rewards.list_rewards_for_request(conn, request_id)
            assert [(r.value, r.policy_update) for r in recorded] == [(0.75, 3)]


async def test_a_bad_journal_costs_only_itself(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    writer = JournalWriter(database)
    good, bad = str(uuid.uuid4()), str(uuid.uuid4())
    writer.log_request(PendingRequest(good, "acme", None, ROW))
    # ``bad`` was never logged: its outcome has no request to complete.
    writer.submit(a_journal(bad), DONE)
    writer.submit(a_journal(good), DONE)
    await writer.drain()

    async with database.connection() as conn:
        assert (await requests.get_request(conn, good)).status == RequestStatus.COMPLETED
        assert await decisions.list_decisions_for_request(conn, bad) == []
    assert f"request {bad}: not written" in caplog.text


async def test_a_journal_is_spooled_with_its_request_while_the_store_is_down(
    database: Database, tmp_path: Path
) -> None:
    spool = JournalSpool(tmp_path / "spool")
    writer = JournalWriter(ScriptedDatabase(database, down=True), spool)
    early, late = str(uuid.uuid4()), str(uuid.uuid4())
    writer.log_request(PendingRequest(early, "acme", None, ROW))
    await writer.drain()  # logging ``early`` failed; its journal comes later
    writer.log_request(PendingRequest(late, "acme", None, ROW))
    writer.submit(a_journal(late), Failed(error="cut", model="small", latency_ms=3.0))
    writer.submit(a_journal(early), DONE)
    await writer.drain()
    assert writer.spooled == 2

    back = JournalWriter(database, spool)
    assert await back.flush_spool() == 2
    async with database.connection() as conn:
        assert (await requests.get_request(conn, early)).status == RequestStatus.COMPLETED
        assert (await requests.get_request(conn, late)).status == RequestStatus.FAILED
        assert len(await rewards.list_rewards_for_request(conn, early)) == 1


async def test_a_spooled_journal_whose_request_row_did_get_in_is_written_not_dropped(
    database: Database, tmp_path: Path
) -> None:
    """The store took a request's row but the writer could not tell (the connection broke
    as the commit's answer came back), so the row was spooled with the journal. Writing
    it back conflicts on the row alone: the journal's own rows still go in."""
    spool = JournalSpool(tmp_path / "spool")
    request_id = str(uuid.uuid4())
    journal = a_journal(request_id)
    journal.request = ROW  # as the writer keeps a row it believes the store did not take
    spool.save(journal, DONE, None)
    logged = JournalWriter(database)
    logged.log_request(PendingRequest(request_id, "acme", "ann", ROW))  # it did take it
    await logged.drain()

    assert await JournalWriter(database, spool).flush_spool() == 1
    async with database.connection() as conn:
        assert (await requests.get_request(conn, request_id)).status == RequestStatus.COMPLETED
        assert len(await decisions.list_decisions_for_request(conn, request_id)) == 1
        assert len(await rewards.list_rewards_for_request(conn, request_id)) == 1
    assert spool.count() == 0


class LostAnswerDatabase(Database):
    """The test database, whose first transaction commits and then reports the store gone,
    as when the connection breaks while the commit's answer comes back."""

    def __init__(self, database: Database) -> None:
        super().__init__(database._pool, database.url)
        self.lose_next = True

    @asynccontextmanager
    async def connection(self, *, transaction: bool = True) -> AsyncIterator[Any]:
        async with super().connection(transaction=transaction) as conn:
            yield conn
        if self.lose_next:
            self.lose_next = False
            raise StoreUnavailableError("the connection broke as the commit's answer came back")


async def test_a_request_row_whose_commit_answer_was_lost_does_not_cost_its_journal(
    database: Database,
) -> None:
    writer = JournalWriter(LostAnswerDatabase(database))
    request_id = str(uuid.uuid4())
    writer.log_request(PendingRequest(request_id, "acme", "ann", ROW))
    await writer.drain()  # the row got in; the writer was told the store was down
    writer.submit(a_journal(request_id), DONE)
    await writer.drain()

    async with database.connection() as conn:
        assert (await requests.get_request(conn, request_id)).status == RequestStatus.COMPLETED
        assert len(await decisions.list_decisions_for_request(conn, request_id)) == 1
        assert len(await rewards.list_rewards_for_request(conn, request_id)) == 1


async def test_a_spooled_journal_written_before_is_dropped_once(
    database: Database, tmp_path: Path
) -> None:
    spool = JournalSpool(tmp_path / "spool")
    request_id = str(uuid.uuid4())
    journal = a_journal(request_id)
    journal.request = ROW
    spool.save(journal, DONE, None)
    await write_all(database, (), [(journal, DONE, None)])  # all of it got in

    assert await JournalWriter(database, spool).flush_spool() == 1
    async with database.connection() as conn:
        assert len(await decisions.list_decisions_for_request(conn, request_id)) == 1
        assert len(await rewards.list_rewards_for_request(conn, request_id)) == 1
    assert spool.count() == 0


async def test_a_delegated_journal_is_written_and_spooled_like_any(
    database: Database, tmp_path: Path
) -> None:
    spool = JournalSpool(tmp_path / "spool")
    down = JournalWriter(ScriptedDatabase(database, down=True), spool)
    stored, spooled = str(uuid.uuid4()), str(uuid.uuid4())
    embedding = np.eye(EMBEDDING_DIM, dtype=np.float32)[3]
    down.log_request(PendingRequest(spooled, "acme", None, ROW))
    down.submit(a_journal(spooled), Delegated(model="small", latency_ms=2.0), embedding)
    await down.drain()
    writer = JournalWriter(database, spool)
    writer.log_request(PendingRequest(stored, "acme", None, ROW))
    writer.submit(a_journal(stored), Delegated(model="small", latency_ms=2.0), embedding)
    await writer.drain()
    assert await writer.flush_spool() == 1

    async with database.connection() as conn:
        for request_id in (stored, spooled):
            record = await requests.get_request(conn, request_id)
            assert (record.status, record.model, record.output) == (
                RequestStatus.DELEGATED,
                "small",
                None,
            )
            cursor = await conn.execute(
                "SELECT count(*) FROM query_embeddings WHERE request_id = %s", (request_id,)
            )
            assert await cursor.fetchone() == (1,)


async def test_waiting_for_a_request_returns_once_its_rows_are_in(database: Database) -> None:
    writer = JournalWriter(database)
    request_id = str(uuid.uuid4())
    writer.log_request(PendingRequest(request_id, "acme", None, ROW))
    await writer.wait(request_id=request_id)
    async with database.connection() as conn:  # logged (raises NotFoundError if not)
        assert (await requests.get_request(conn, request_id)).status == RequestStatus.ACCEPTED
    writer.submit(a_journal(request_id), DONE)
    await writer.wait(request_id=request_id)
    async with database.connection() as conn:
        assert (await requests.get_request(conn, request_id)).status == RequestStatus.COMPLETED


async def test_a_lingering_request_row_goes_with_its_journal_in_one_transaction(
    database: Database,
) -> None:
    counting = ScriptedDatabase(database)
    writer = JournalWriter(counting, linger_s=30.0)
    request_id = str(uuid.uuid4())
    writer.log_request(PendingRequest(request_id, "acme", "ann", ROW))
    await asyncio.sleep(0.05)  # the request runs: its row waits
    assert counting.tried == 0
    writer.submit(a_journal(request_id), DONE)  # it ended: both go now, together
    await asyncio.wait_for(writer.drain(), 10)
    assert counting.tried == 1
    async with database.connection() as conn:
        assert (await requests.get_request(conn, request_id)).status == RequestStatus.COMPLETED


async def test_a_request_row_lingers_no_longer_than_the_linger(database: Database) -> None:
    counting = ScriptedDatabase(database)
    writer = JournalWriter(counting, linger_s=0.1)
    request_id = str(uuid.uuid4())
    writer.log_request(PendingRequest(request_id, "acme", "ann", ROW))
    started = time.monotonic()
    while counting.tried == 0:  # no journal comes: the row is logged on its own
        assert time.monotonic() - started < 10, "the row was never logged"
        await asyncio.sleep(0.01)
    assert time.monotonic() - started >= 0.09
    await writer.drain()
    async with database.connection() as conn:
        assert (await requests.get_request(conn, request_id)).status == RequestStatus.ACCEPTED


async def test_waiting_for_or_draining_a_lingering_row_writes_it_at_once(
    database: Database,
) -> None:
    writer = JournalWriter(database, linger_s=30.0)
    waited, drained = str(uuid.uuid4()), str(uuid.uuid4())
    writer.log_request(PendingRequest(waited, "acme", None, ROW))
    await asyncio.wait_for(writer.wait(request_id=waited), 10)  # not 30 s
    writer.log_request(PendingRequest(drained, "acme", None, ROW))
    await asyncio.wait_for(writer.drain(), 10)
    async with database.connection() as conn:
        for request_id in (waited, drained):
            assert (await requests.get_request(conn, request_id)).status == RequestStatus.ACCEPTED


async def test_waiting_for_a_held_journal_lasts_until_it_is_submitted_and_written(
    database: Database,
) -> None:
    """An answer out before its journal: a reader of its rows, by request or by decision,
    waits for the hand-off and then for the write."""
    writer = JournalWriter(database)
    request_id = str(uuid.uuid4())
    writer.log_request(PendingRequest(request_id, "acme", None, ROW))
    await writer.wait(request_id=request_id)  # the request row is in
    journal = a_journal(request_id)
    writer.hold(journal)
    by_request = asyncio.ensure_future(writer.wait(request_id=request_id))
    by_decision = asyncio.ensure_future(writer.wait(decision_id=journal.decisions[0].decision_id))
    await asyncio.sleep(0.05)
    assert not by_request.done()
    assert not by_decision.done()
    writer.submit(journal, DONE)
    await asyncio.wait_for(asyncio.gather(by_request, by_decision), 10)
    async with database.connection() as conn:
        assert (await requests.get_request(conn, request_id)).status == RequestStatus.COMPLETED
        assert (
            len(await rewards.list_rewards_for_decision(conn, journal.decisions[0].decision_id))
            == 1
        )


async def test_a_spooled_journal_the_store_refuses_is_set_aside_not_raised(
    database: Database, tmp_path: Path
) -> None:
    """A spooled journal whose request row is neither in the store nor carried (a store
    replaced since it was spooled) cannot be written: it is kept beside the spool and the
    journals after it are written, instead of the flush failing (and the service's start
    with it)."""
    spool = JournalSpool(tmp_path / "spool")
    orphan = a_journal(str(uuid.uuid4()))  # no request row anywhere
    spool.save(orphan, DONE, None)
    await asyncio.sleep(0.01)  # replayed oldest first: the orphan, then the good one
    good_id = str(uuid.uuid4())
    good = a_journal(good_id)
    good.request = ROW
    spool.save(good, DONE, None)

    assert await JournalWriter(database, spool).flush_spool() == 1
    assert spool.count() == 0
    assert [p.name for p in (tmp_path / "spool").iterdir()] == [f"{orphan.request_id}.json.refused"]
    async with database.connection() as conn:
        assert (await requests.get_request(conn, good_id)).status == RequestStatus.COMPLETED


def test_a_drawn_context_is_rendered_once_when_read_and_spools_as_json(tmp_path: Path) -> None:
    context = Context(
        shared={"Q": {"log_tokens": 2.0, "lang": "en"}},
        arms=(
            ArmFeatures("small", {"A": {"arm": "small"}}),
            ArmFeatures("large", {"A": {"arm": "large"}}),
        ),
    )
    rendered = ContextJson(context)
    assert rendered._json is None  # nothing rendered at the draw
    assert dict(rendered) == context.to_json()
    assert rendered == context.to_json()
    assert rendered._json is not None
    journal = Journal(request_id=str(uuid.uuid4()), tenant="acme", user_id=None)
    journal.decision(
        DecisionRow(
            decision_id=str(uuid.uuid4()),
            stage="pre",
            context=rendered,
            arms=context.arm_names,
            chosen_arm="small",
            probability=1.0,
            pmf={"small": 1.0, "large": 0.0},
            policy_name="pre",
            policy_version=0,
        )
    )
    spool = JournalSpool(tmp_path / "spool")
    done = Completed(output="4", model="small", cost_usd=0.0, latency_ms=1.0)
    loaded, _, _ = spool.load(spool.save(journal, done, None))
    assert loaded.decisions[0].context == context.to_json()


async def test_past_its_backlog_new_requests_wait_until_the_writer_catches_up(
    database: Database,
) -> None:
    gated = ScriptedDatabase(database, held=True)
    writer = JournalWriter(gated, max_backlog=3)
    ids = [str(uuid.uuid4()) for _ in range(5)]
    writer.log_request(PendingRequest(ids[0], "acme", None, ROW))
    await asyncio.sleep(0)  # the writer takes it into a transaction the store holds up
    for request_id in ids[1:4]:  # three more: the queue is at its bound
        await asyncio.wait_for(writer.admit(), 1)
        writer.log_request(PendingRequest(request_id, "acme", None, ROW))
    assert writer.backlog == 3
    assert writer.full

    admitting = asyncio.create_task(writer.admit())
    await asyncio.sleep(0.1)
    assert not admitting.done(), "a request is admitted past the bound"
    gated.gate.set()  # the store takes the first batch: the queue goes into the next
    await asyncio.wait_for(admitting, 10)
    assert writer.admissions_waited == 1
    writer.log_request(PendingRequest(ids[4], "acme", None, ROW))
    await asyncio.wait_for(writer.drain(), 10)
    assert writer.backlog == 0
    assert not writer.full
    async with database.connection() as conn:  # nothing lost on the way
        for request_id in ids:
            assert (await requests.get_request(conn, request_id)).status == RequestStatus.ACCEPTED


async def test_without_a_bound_the_writer_never_keeps_a_request_waiting(
    database: Database,
) -> None:
    gated = ScriptedDatabase(database, held=True)
    writer = JournalWriter(gated)
    for _ in range(50):
        writer.log_request(PendingRequest(str(uuid.uuid4()), "acme", None, ROW))
        await asyncio.wait_for(writer.admit(), 1)
    assert not writer.full
    assert writer.admissions_waited == 0
    gated.gate.set()
    await asyncio.wait_for(writer.drain(), 10)


def test_a_backlog_bound_below_one_is_refused(database: Database) -> None:
    with pytest.raises(ValueError, match="max_backlog must be at least 1"):
        JournalWriter(database, max_backlog=0)


async def test_requests_waiting_at_the_door_come_in_first_come_first_in(
    database: Database,
) -> None:
    gated = ScriptedDatabase(database, held=True)
    writer = JournalWriter(gated, max_backlog=1)
    writer.log_request(PendingRequest(str(uuid.uuid4()), "acme", None, ROW))
    await asyncio.sleep(0)  # taken into the held-up transaction
    writer.log_request(PendingRequest(str(uuid.uuid4()), "acme", None, ROW))  # at the bound
    came_in: list[str] = []

    async def request(name: str, logs: bool = True) -> None:
        await writer.admit()
        came_in.append(name)
        if logs:  # queues its row, as an admitted request does (one refused queues none)
            writer.log_request(PendingRequest(str(uuid.uuid4()), "acme", None, ROW))

    waiting = [asyncio.create_task(request(name, logs=name != "b")) for name in "abcde"]
    await asyncio.sleep(0.05)
    assert came_in == []
    assert not writer.admitting_at_once
    waiting[2].cancel()  # c's client went away while it waited
    gated.gate.set()
    await asyncio.wait_for(asyncio.gather(*waiting, return_exceptions=True), 10)
    assert came_in == ["a", "b", "d", "e"]  # in order; b queued nothing and d still came in
    assert writer.admissions_waited == 5
    await asyncio.wait_for(writer.drain(), 10)
    assert writer.admitting_at_once


async def test_while_the_store_is_down_the_queue_goes_to_the_spool_in_one_go(
    database: Database, tmp_path: Path
) -> None:
    flaky = ScriptedDatabase(database, down=True)
    spool = JournalSpool(tmp_path / "spool")
    writer = JournalWriter(flaky, spool, max_batch=2, max_backlog=4)
    first = str(uuid.uuid4())
    writer.log_request(PendingRequest(first, "acme", None, ROW))
    writer.submit(a_journal(first), DONE)
    await writer.drain()  # the store failed them: spooled, and the writer knows it is down
    assert flaky.tried == 1
    ids = [str(uuid.uuid4()) for _ in range(6)]
    for request_id in ids:  # more than a batch, more than the bound: nobody waits on them
        writer.log_request(PendingRequest(request_id, "acme", None, ROW))
        writer.submit(a_journal(request_id), DONE)
    await asyncio.wait_for(writer.drain(), 10)
    assert flaky.tried == 1  # spooled without asking the store again
    assert writer.spooled == 7

    flaky.down = False
    assert await writer.flush_spool() == 7  # back: the flush finds it so
    late = str(uuid.uuid4())
    writer.log_request(PendingRequest(late, "acme", None, ROW))
    writer.submit(a_journal(late), DONE)
    await writer.drain()
    assert writer.spooled == 0  # written, not spooled
    async with database.connection() as conn:
        for request_id in [first, *ids, late]:
            assert (await requests.get_request(conn, request_id)).status == RequestStatus.COMPLETED


async def test_a_store_that_hangs_counts_as_down_after_the_write_timeout(
    database: Database, tmp_path: Path
) -> None:
    hung = ScriptedDatabase(database, held=True)  # its gate never opens
    writer = JournalWriter(
        hung, JournalSpool(tmp_path / "spool"), max_batch=2, max_backlog=2, write_timeout_s=0.2
    )
    ids = [str(uuid.uuid4()) for _ in range(5)]
    for request_id in ids:
        await asyncio.wait_for(writer.admit(), 5)  # never held at the door for long
        writer.log_request(PendingRequest(request_id, "acme", None, ROW))
        writer.submit(a_journal(request_id), DONE)
    await asyncio.wait_for(writer.drain(), 5)
    assert writer.spooled == 5
    assert hung.tried == 1  # one transaction timed out; the rest went to the spool at once

    back = JournalWriter(database, JournalSpool(tmp_path / "spool"))
    assert await back.flush_spool() == 5
    async with database.connection() as conn:
        for request_id in ids:
            assert (await requests.get_request(conn, request_id)).status == RequestStatus.COMPLETED


def test_a_write_timeout_not_above_zero_is_refused(database: Database) -> None:
    with pytest.raises(ValueError, match="write_timeout_s must be above 0"):
        JournalWriter(database, write_timeout_s=0)
