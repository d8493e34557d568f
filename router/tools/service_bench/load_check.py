"""After a load run: is every answered request in the store, with its decisions and rewards?

For each 200 answer the client kept the request id and its trace's decisions (ids and
immediate rewards). A request is *lost* when its row is missing or not completed, a
decision when its row is missing (or belongs to another request), a reward when a decision
the trace says was rewarded has no reward row with that value.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from features.errors import NotFoundError
from router.tools.service_bench.loadgen import Routed
from store import decisions as decision_log
from store import requests as request_log
from store import rewards as reward_log
from store.database import Database
from store.records import RequestStatus

PAGE = 5000
EXAMPLES = 5


@dataclass(frozen=True)
class StoreCheck:
    """What the store holds of the answered requests."""

    requests: int
    decisions: int
    rewards: int
    missing_requests: int
    incomplete_requests: int
    missing_decisions: int
    missing_rewards: int
    examples: tuple[str, ...] = ()

    @property
    def lost(self) -> int:
        return (
            self.missing_requests
            + self.incomplete_requests
            + self.missing_decisions
            + self.missing_rewards
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "decisions": self.decisions,
            "rewards": self.rewards,
            "missing_requests": self.missing_requests,
            "incomplete_requests": self.incomplete_requests,
            "missing_decisions": self.missing_decisions,
            "missing_rewards": self.missing_rewards,
            "lost": self.lost,
            "examples": list(self.examples),
        }


async def _statuses(
    database: Database, request_ids: Sequence[str], parallel: int
) -> dict[str, RequestStatus | None]:
    """Each request's status in the store (None when it has no row)."""
    found: dict[str, RequestStatus | None] = {}
    queue = list(request_ids)

    async def reader() -> None:
        async with database.connection() as conn:
            while queue:
                request_id = queue.pop()
                try:
                    found[request_id] = (await request_log.get_request(conn, request_id)).status
                except NotFoundError:
                    found[request_id] = None

    await asyncio.gather(*(reader() for _ in range(parallel)))
    return found


async def _decision_owners(database: Database) -> dict[str, str]:
    """Every logged decision's id and its request's id."""
    owners: dict[str, str] = {}
    after = None
    async with database.connection() as conn:
        while True:
            page = await decision_log.list_decisions(conn, limit=PAGE, after=after)
            for record in page:
                owners[str(record.id)] = str(record.request_id)
            if len(page) < PAGE:
                return owners
            after = (page[-1].created_at, page[-1].id)


async def _reward_values(database: Database, decision_ids: Sequence[str]) -> dict[str, list[float]]:
    """The reward values recorded for each of ``decision_ids``."""
    values: dict[str, list[float]] = {}
    async with database.connection() as conn:
        for at in range(0, len(decision_ids), PAGE):
            chunk = decision_ids[at : at + PAGE]
            for reward in await reward_log.list_rewards_for_decisions(conn, chunk):
                values.setdefault(str(reward.decision_id), []).append(reward.value)
    return values


async def check_store(
    database: Database, results: Sequence[Routed], *, parallel: int = 4
) -> StoreCheck:
    """Compare the answered requests (status 200) with what the store holds."""
    answered = [r for r in results if r.ok and r.request_id is not None]
    statuses = await _statuses(database, [str(r.request_id) for r in answered], parallel)
    owners = await _decision_owners(database)
    seen = [(r, d) for r in answered for d in r.decisions]
    rewards = await _reward_values(database, [d.decision_id for _, d in seen])
    examples: list[str] = []

    def note(text: str) -> None:
        if len(examples) < EXAMPLES:
            examples.append(text)

    missing_requests = incomplete = missing_decisions = missing_rewards = expected_rewards = 0
    for routed in answered:
        status = statuses.get(str(routed.request_id))
        if status is None:
            missing_requests += 1
            note(f"request {routed.request_id}: no row")
        elif status is not RequestStatus.COMPLETED:
            incomplete += 1
            note(f"request {routed.request_id}: status {status.value}")
    for routed, decision in seen:
        if owners.get(decision.decision_id) != routed.request_id:
            missing_decisions += 1
            note(f"decision {decision.decision_id} of request {routed.request_id}: no row")
        if decision.reward is None:
            continue
        expected_rewards += 1
        recorded = rewards.get(decision.decision_id, [])
        if not any(math.isclose(v, decision.reward, abs_tol=1e-9) for v in recorded):
            missing_rewards += 1
            note(f"decision {decision.decision_id}: reward {decision.reward} not recorded")
    return StoreCheck(
        requests=len(answered),
        decisions=len(seen),
        rewards=expected_rewards,
        missing_requests=missing_requests,
        incomplete_requests=incomplete,
        missing_decisions=missing_decisions,
        missing_rewards=missing_rewards,
        examples=tuple(examples),
    )
