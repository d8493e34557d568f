"""Rewards observed for decisions, recorded at most once per idempotency key, counted once
per source.

A reporter that retries (a judge after a timeout, a client resending feedback) passes the same
``idempotency_key``: the second call returns the first row instead of counting the reward
twice. A second reward of the same source on the same decision under another key (or none) is
recorded, but not ``counted``: no policy learns it. Every function runs in the caller's
transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from features.errors import ConflictError
from store.columns import columns
from store.ids import Id, reference
from store.records import DecisionOutcome, LearnableReward, RewardRecord
from store.translation import translated

_LOCK_CLASS = 0x5245_5744  # "REWD": the advisory-lock class of (decision, source) pairs.


MEAN_COUNTED_REWARD = sql.SQL(
    "(SELECT avg(w.value) FROM rewards AS w WHERE w.decision_id = d.id AND w.counted)"
)
"""SQL: the mean of the counted rewards of the decision aliased ``d`` (NULL before any). The
one definition of a decision's reward wherever one shapes routing or its reports: a second
reward of one source (``counted`` false) moves none of them."""


async def record_reward(
    conn: AsyncConnection[Any],
    *,
    decision_id: Id,
    value: float,
    source: str,
    idempotency_key: str | None = None,
    policy_update: int | None = None,
    policy_name: str | None = None,
) -> tuple[RewardRecord, bool]:
    """Record ``value`` for a decision; return the row and whether it was created now.

    The row is ``counted`` (a policy may learn it) when it is the first reward of ``source``
    on the decision; a later one of the same source is recorded with ``counted`` False, so
    one source's reward on one decision is learned once however many keys it comes under.
    With an ``idempotency_key`` already recorded for the same decision and value, return
    that row and False. Raises ConflictError when the key was recorded for another decision
    or value, RequestError when ``value`` is not in [0, 1], NotFoundError when the decision
    does not exist.
    """
    did = reference(decision_id, "decision")
    query = sql.SQL(
        "INSERT INTO rewards (decision_id, value, source, idempotency_key, policy_update, "
        "policy_name, counted) SELECT %(did)s, %(value)s, %(source)s, %(key)s, %(update)s, "
        "%(policy)s, NOT EXISTS (SELECT 1 FROM rewards WHERE decision_id = %(did)s "
        "AND source = %(source)s AND counted) "
        "ON CONFLICT (idempotency_key) DO NOTHING RETURNING {}"
    ).format(columns(RewardRecord))
    values: dict[str, Any] = {
        "did": did,
        "value": value,
        "source": source,
        "key": idempotency_key,
        "update": policy_update,
        "policy": policy_name,
    }
    with translated(f"cannot record a reward for decision {did}"):
        async with conn.transaction():
            # Two first rewards of one source racing: the second waits, then sees the first.
            await conn.execute(
                "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_LOCK_CLASS, f"{did}:{source}")
            )
            inserted = await _fetch(conn, query, values)
        if inserted:
            return inserted[0], True
        existing = await _fetch(
            conn,
            sql.SQL("SELECT {} FROM rewards WHERE idempotency_key = %s").format(
                columns(RewardRecord)
            ),
            (idempotency_key,),
        )
    if not existing:
        raise ConflictError(
            f"reward idempotency key {idempotency_key!r} collided with a row that has since "
            "been deleted; retry"
        )
    first = existing[0]
    if first.decision_id != did or first.value != value:
        raise ConflictError(
            f"reward idempotency key {idempotency_key!r} was already used for decision "
            f"{first.decision_id} with value {first.value}, not decision {did} with value {value}"
        )
    return first, False


async def counted_reward(conn: AsyncConnection[Any], decision_id: Id, source: str) -> int | None:
    """The id of the reward of ``source`` on the decision that counts (the one learned)."""
    did = reference(decision_id, "decision")
    with translated(f"cannot read the counted reward of decision {did}"):
        cursor = await conn.execute(
            "SELECT id FROM rewards WHERE decision_id = %s AND source = %s AND counted",
            (did, source),
        )
        row = await cursor.fetchone()
    return None if row is None else int(row[0])


async def mark_learned(
    conn: AsyncConnection[Any], reward_id: int, policy_name: str, policy_update: int | None
) -> None:
    """Record that a reward was learned as update ``policy_update`` of policy
    ``policy_name`` (or, with None, is held for its tenant under a prior's name)."""
    with translated(f"cannot mark reward {reward_id} learned"):
        await conn.execute(
            "UPDATE rewards SET policy_name = %s, policy_update = %s WHERE id = %s",
            (policy_name, policy_update, reward_id),
        )


async def mark_many_learned(
    conn: AsyncConnection[Any], marks: Sequence[tuple[int, str, int | None]]
) -> None:
    """``mark_learned`` for many ``(reward_id, policy_name, policy_update)``, pipelined: one
    round trip for all of them."""
    if not marks:
        return
    with translated(f"cannot mark {len(marks)} rewards learned"):
        async with conn.cursor() as cursor:
            await cursor.executemany(
                "UPDATE rewards SET policy_name = %s, policy_update = %s WHERE id = %s",
                [(name, update, reward_id) for reward_id, name, update in marks],
            )


_LEARNABLE = (
    "SELECT w.id AS reward_id, w.value, w.policy_update, d.context, d.chosen_arm, "
    "d.probability, d.stage, r.tenant FROM rewards AS w "
    "JOIN decisions AS d ON d.id = w.decision_id JOIN requests AS r ON r.id = d.request_id "
)


async def rewards_to_relearn(
    conn: AsyncConnection[Any],
    stage: str,
    after_update: int,
    since: datetime | None,
    *,
    policy_name: str | None = None,
    tenants: Sequence[str] | None = None,
    held: str | None = None,
) -> list[LearnableReward]:
    """Rewards of ``stage`` that policy ``policy_name`` (default: the stage's shared policy),
    restored at ``after_update``, has not learned, in learning order: those it learned as a
    later update; those counted but never learned, recorded after ``since``; and those
    ``held`` under a prior's name. The last two only of ``tenants`` (None: every tenant)."""
    query = _LEARNABLE + (
        "WHERE d.stage = %(stage)s AND ("
        "(w.policy_name = %(policy)s AND w.policy_update > %(after)s) OR "
        "(w.counted AND (%(tenants)s::text[] IS NULL OR r.tenant = ANY(%(tenants)s::text[])) "
        "AND ((w.policy_name IS NULL AND (%(since)s::timestamptz IS NULL "
        "OR w.created_at >= %(since)s::timestamptz)) OR w.policy_name = %(held)s))) "
        "ORDER BY w.policy_update NULLS LAST, w.id"
    )
    values = {
        "stage": stage,
        "policy": policy_name or stage,
        "after": after_update,
        "since": since,
        "tenants": None if tenants is None else list(tenants),
        "held": held,
    }
    with translated(f"cannot read the rewards of stage {stage!r} to learn again"):
        async with conn.cursor(row_factory=dict_row) as cursor:
            await cursor.execute(query, values)
            rows = await cursor.fetchall()
    return [LearnableReward(**row) for row in rows]


async def unlearned_rewards(
    conn: AsyncConnection[Any], stages: Sequence[str], *, limit: int = 1000
) -> list[LearnableReward]:
    """The oldest ``limit`` counted rewards of ``stages`` that no policy has learned or held
    yet, in the order they were recorded: what the learner process learns next."""
    query = _LEARNABLE + (
        "WHERE w.policy_name IS NULL AND w.counted AND d.stage = ANY(%s) ORDER BY w.id LIMIT %s"
    )
    with translated("cannot read the rewards to learn"):
        async with conn.cursor(row_factory=dict_row) as cursor:
            await cursor.execute(query, (list(stages), limit))
            rows = await cursor.fetchall()
    return [LearnableReward(**row) for row in rows]


async def count_taken(conn: AsyncConnection[Any], stage: str, tenant: str) -> int:
    """How many counted rewards of ``tenant``'s decisions at ``stage`` a policy has taken
    (learned, or held for the tenant); those not taken yet are counted as they are."""
    with translated(f"cannot count the rewards of tenant {tenant!r} at stage {stage!r}"):
        cursor = await conn.execute(
            "SELECT count(*) FROM rewards AS w JOIN decisions AS d ON d.id = w.decision_id "
            "JOIN requests AS r ON r.id = d.request_id "
            "WHERE d.stage = %s AND r.tenant = %s AND w.counted AND w.policy_name IS NOT NULL",
            (stage, tenant),
        )
        row = await cursor.fetchone()
    return 0 if row is None else int(row[0])


async def list_rewards_for_decision(
    conn: AsyncConnection[Any], decision_id: Id
) -> list[RewardRecord]:
    """The rewards of one decision, oldest first (empty for an unknown decision)."""
    did = reference(decision_id, "decision")
    query = sql.SQL("SELECT {} FROM rewards WHERE decision_id = %s ORDER BY created_at, id").format(
        columns(RewardRecord)
    )
    with translated(f"cannot read the rewards of decision {did}"):
        return await _fetch(conn, query, (did,))


async def list_rewards_for_decisions(
    conn: AsyncConnection[Any], decision_ids: Sequence[Id]
) -> list[RewardRecord]:
    """The rewards of many decisions in one query, ordered by decision id, then oldest first.

    Unknown ids have no rewards. For replay, which reads decisions a page at a time.
    """
    ids = [reference(decision_id, "decision") for decision_id in decision_ids]
    if not ids:
        return []
    query = sql.SQL(
        "SELECT {} FROM rewards WHERE decision_id = ANY(%s) ORDER BY decision_id, created_at, id"
    ).format(columns(RewardRecord))
    with translated(f"cannot read the rewards of {len(ids)} decisions"):
        return await _fetch(conn, query, (ids,))


async def list_rewards_for_request(
    conn: AsyncConnection[Any], request_id: Id
) -> list[RewardRecord]:
    """The rewards of every decision of one request, oldest first."""
    rid = reference(request_id, "request")
    query = sql.SQL(
        "SELECT {} FROM rewards AS w JOIN decisions AS d ON d.id = w.decision_id "
        "WHERE d.request_id = %s ORDER BY w.created_at, w.id"
    ).format(columns(RewardRecord, "w"))
    with translated(f"cannot read the rewards of request {rid}"):
        return await _fetch(conn, query, (rid,))


@dataclass(frozen=True, slots=True)
class RecentReward:
    """The mean reward of the rewarded decisions among the last ``window`` of a stage."""

    mean: float | None
    decisions: int
    window: int


async def recent_reward(
    conn: AsyncConnection[Any], *, stage: str, window: int, tenant: str | None = None
) -> RecentReward:
    """Mean reward over the last ``window`` decisions of ``stage`` (of ``tenant`` if given).

    Each decision counts once, with the mean of its rewards (immediate and delayed);
    decisions without a reward yet are left out, and ``decisions`` says how many counted.
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    tenant_filter = sql.SQL("AND r.tenant = %s") if tenant is not None else sql.SQL("")
    query = sql.SQL(
        "SELECT avg(last.mean) AS mean, count(last.mean) AS decisions FROM ("
        "SELECT {mean} AS mean "
        "FROM decisions AS d JOIN requests AS r ON r.id = d.request_id "
        "WHERE d.stage = %s {} ORDER BY d.created_at DESC, d.id DESC LIMIT %s) AS last"
    ).format(tenant_filter, mean=MEAN_COUNTED_REWARD)
    values: tuple[Any, ...] = (stage, tenant, window) if tenant is not None else (stage, window)
    with translated(f"cannot average the recent rewards of stage {stage!r}"):
        cursor = await conn.execute(query, values)
        row = await cursor.fetchone()
    assert row is not None
    mean = None if row[0] is None else float(row[0])
    return RecentReward(mean=mean, decisions=int(row[1]), window=window)


async def recent_outcomes(
    conn: AsyncConnection[Any], *, stage: str, window: int, tenant: str | None = None
) -> list[DecisionOutcome]:
    """The last ``window`` decisions of ``stage`` (of ``tenant``'s requests if given), newest
    first, each with its context and the mean of its rewards (None while it has none)."""
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    tenant_filter = sql.SQL("AND r.tenant = %s") if tenant is not None else sql.SQL("")
    query = sql.SQL(
        "SELECT d.context, d.chosen_arm, d.created_at, {mean} AS reward "
        "FROM decisions AS d JOIN requests AS r ON r.id = d.request_id "
        "WHERE d.stage = %s {} ORDER BY d.created_at DESC, d.id DESC LIMIT %s"
    ).format(tenant_filter, mean=MEAN_COUNTED_REWARD)
    values: tuple[Any, ...] = (stage, tenant, window) if tenant is not None else (stage, window)
    with translated(f"cannot read the recent decisions of stage {stage!r}"):
        async with conn.cursor(row_factory=dict_row) as cursor:
            await cursor.execute(query, values)
            rows = await cursor.fetchall()
    return [
        DecisionOutcome(
            context=row["context"],
            chosen_arm=row["chosen_arm"],
            reward=None if row["reward"] is None else float(row["reward"]),
            created_at=row["created_at"],
        )
        for row in rows
    ]


async def _fetch(
    conn: AsyncConnection[Any], query: sql.Composed, values: Sequence[Any] | Mapping[str, Any]
) -> list[RewardRecord]:
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(query, values)
        return [RewardRecord(**row) for row in await cursor.fetchall()]
