"""``GET /policies``: each stage's policy, how it explores, how much it learned, how it does."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query

from router.api.deps import ReadCaller, RuntimeDep
from store import rewards as reward_log
from store import snapshots

routes = APIRouter(tags=["policies"])


@routes.get("/policies")
async def list_policies(
    runtime: RuntimeDep,
    caller: ReadCaller,
    window: Annotated[int, Query(ge=1, le=100_000)] = 100,
) -> dict[str, Any]:
    """Per stage: updates learned (the ``policy_version`` its decisions log), the newest
    snapshot's version, the exploration settings, and the mean reward of its last ``window``
    decisions (of the caller's tenant when it has a key, of every tenant otherwise)."""
    policies = []
    for stage in runtime.policies.stages:
        policy = runtime.policies.get(stage)
        async with runtime.database.connection() as conn:
            recent = await reward_log.recent_reward(
                conn, stage=stage, window=window, tenant=caller.scope
            )
            snapshot_version = await snapshots.latest_version(conn, stage)
        policies.append(
            {
                "stage": stage,
                "updates": policy.updates,
                "snapshot_version": snapshot_version,
                "exploration": asdict(policy.config),
                "vw_args": policy.config.vw_args(),
                "recent_reward": {
                    "mean": None if recent.mean is None else round(recent.mean, 4),
                    "decisions": recent.decisions,
                    "window": recent.window,
                    "tenant": caller.scope,
                },
            }
        )
    return {"policies": policies}
