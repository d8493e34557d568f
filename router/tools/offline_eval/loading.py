"""Where logged decisions come from and go to: the store, JSONL and DSJSON files.

**Which reward OPE uses.** A decision may have several rewards: the immediate one the
router computes from its checks, then delayed feedback (a user's thumbs, a downstream
test). OPE scores a decision by its *latest* reward (by time recorded): the most informed
verdict, and the one the team's objective is ultimately about. ``reward_source`` narrows
this to the latest reward of one source (e.g. only user feedback); decisions without a
matching reward are skipped and counted. (The online learner learns from every reward as
it arrives; OPE needs one number per decision.)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from features.errors import ConfigError
from learner.context import Context
from learner.ope.dsjson import from_dsjson, to_dsjson
from learner.ope.jsonl import from_record, to_record
from learner.ope.log import LoggedDecision
from learner.ope.progress import SILENT, Progress
from router.settings import Settings
from store import decisions as decision_log
from store import rewards as reward_log
from store.database import Database
from store.records import DecisionRecord, RewardRecord

LogFormat = Literal["jsonl", "dsjson"]
PAGE_SIZE = 2_000
"""Decisions read from the store per query."""


@dataclass(frozen=True)
class LogFilters:
    """Which logged decisions to read; None filters nothing."""

    since: datetime | None = None
    until: datetime | None = None
    stage: str | None = None
    tenant: str | None = None
    limit: int | None = None
    reward_source: str | None = None


@dataclass(frozen=True)
class LoadedLog:
    """Decisions with a reward, oldest first, and how many were read without one."""

    decisions: tuple[LoggedDecision, ...]
    without_reward: int = 0


def choose_reward(rewards: Sequence[RewardRecord], source: str | None) -> RewardRecord | None:
    """The reward OPE uses: the latest one (of ``source``, when given); None if none."""
    matching = [r for r in rewards if source is None or r.source == source]
    if not matching:
        return None
    return max(matching, key=lambda r: (r.created_at, r.id))


def decision_from_record(record: DecisionRecord, reward: RewardRecord) -> LoggedDecision:
    """A store decision and its chosen reward as a ``LoggedDecision``."""
    return LoggedDecision(
        decision_id=str(record.id),
        context=Context.from_json(record.context),
        chosen_arm=record.chosen_arm,
        probability=record.probability,
        pmf=dict(record.pmf),
        reward=reward.value,
        stage=record.stage,
        policy_name=record.policy_name,
        policy_version=record.policy_version,
        timestamp=record.created_at,
        reward_source=reward.source,
    )


async def read_store(
    database: Database, filters: LogFilters, progress: Progress = SILENT
) -> LoadedLog:
    """Logged decisions matching ``filters``, oldest first, a page at a time."""
    decisions: list[LoggedDecision] = []
    without_reward = 0
    after: tuple[datetime, Any] | None = None
    remaining = filters.limit
    progress.start("read store", filters.limit or 0)
    try:
        while remaining is None or remaining > 0:
            page_size = PAGE_SIZE if remaining is None else min(PAGE_SIZE, remaining)
            async with database.connection() as conn:
                page = await decision_log.list_decisions(
                    conn,
                    since=filters.since,
                    until=filters.until,
                    stage=filters.stage,
                    tenant=filters.tenant,
                    limit=page_size,
                    after=after,
                )
                rewards = await reward_log.list_rewards_for_decisions(
                    conn, [record.id for record in page]
                )
            by_decision: dict[Any, list[RewardRecord]] = {}
            for reward in rewards:
                by_decision.setdefault(reward.decision_id, []).append(reward)
            for record in page:
                chosen = choose_reward(by_decision.get(record.id, []), filters.reward_source)
                if chosen is None:
                    without_reward += 1
                else:
                    decisions.append(decision_from_record(record, chosen))
            progress.advance(len(page))
            if len(page) < page_size:
                break
            after = (page[-1].created_at, page[-1].id)
            if remaining is not None:
                remaining -= len(page)
    finally:
        progress.finish()
    return LoadedLog(decisions=tuple(decisions), without_reward=without_reward)


async def open_store(settings: Settings, stack: AsyncExitStack) -> Database:
    """The service's database (its URL, or the embedded server under its data dir)."""
    from router.runtime import open_database

    return await open_database(settings, stack)


def format_of(path: Path, explicit: str | None = None) -> LogFormat:
    """``explicit``, else from the file name: ``.jsonl`` is JSONL; ``.json`` / ``.dsjson``
    are DSJSON."""
    suffix = path.suffix.lower()
    if explicit == "jsonl" or (explicit is None and suffix == ".jsonl"):
        return "jsonl"
    if explicit == "dsjson" or (explicit is None and suffix in (".json", ".dsjson")):
        return "dsjson"
    raise ConfigError(
        f"{path}: cannot tell the log format from the name; use .jsonl (signalroute JSONL) "
        "or .dsjson / .json (VW DSJSON), or pass --input-format / --export-format"
    )


def write_log(path: Path, decisions: Iterable[LoggedDecision], fmt: LogFormat) -> int:
    """Write ``decisions`` one JSON object per line; returns how many."""
    encode = to_record if fmt == "jsonl" else to_dsjson
    count = 0
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as handle:
            for decision in decisions:
                handle.write(json.dumps(encode(decision), separators=(",", ":")))
                handle.write("\n")
                count += 1
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from exc
    return count


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    try:
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    yield number, line
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc


def read_log(
    path: Path, fmt: LogFormat, filters: LogFilters, progress: Progress = SILENT
) -> LoadedLog:
    """Decisions of a JSONL or DSJSON file, filtered like the store (``tenant`` aside:
    files do not carry it), in file order."""
    if filters.tenant is not None:
        raise ConfigError("--tenant filters the store only; exported files carry no tenant")
    decode = from_record if fmt == "jsonl" else from_dsjson
    decisions: list[LoggedDecision] = []
    progress.start(f"read {path.name}", 0)
    try:
        for number, line in _lines(path):
            try:
                decision = decode(json.loads(line))
            except (KeyError, ValueError, TypeError, IndexError) as exc:
                detail = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
                raise ConfigError(f"{path}:{number}: not a {fmt} decision: {detail}") from None
            progress.advance()
            if not _keep(decision, filters):
                continue
            decisions.append(decision)
            if filters.limit is not None and len(decisions) >= filters.limit:
                break
    finally:
        progress.finish()
    return LoadedLog(decisions=tuple(decisions))


def _keep(decision: LoggedDecision, filters: LogFilters) -> bool:
    if filters.stage is not None and decision.stage != filters.stage:
        return False
    if filters.reward_source is not None and decision.reward_source != filters.reward_source:
        return False
    stamp = decision.timestamp
    if filters.since is not None and (stamp is None or stamp < filters.since):
        return False
    return not (filters.until is not None and (stamp is None or stamp >= filters.until))
