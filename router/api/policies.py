"""``GET /policies``: each stage's policy, how it explores, how much it learned, how it does."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query

from router.api.deps import CallerDep, RuntimeDep
from store import rewards as reward_log
from store import snapshots

routes = APIRouter(tags=["policies"])


@routes.get("/policies")
async def list_policies(
    runtime: RuntimeDep,
    caller: CallerDep,
    window: Annotated[int, Query(ge=1, le=100_000)] = 100,
) -> dict[str, Any]:
    """Per stage: the policy serving the caller's tenant (with a key; else the shared one):
    its name (the ``policy_name`` its decisions log), whether it learns (a tenant's prior
    does not), updates learned (the ``policy_version`` its decisions log), the newest
    snapshot's version, the exploration settings, and the mean reward of its last ``window``
    decisions (of the caller's tenant when it has a key, of every tenant otherwise)."""
    policies = []
    async with runtime.policies.pinned(caller.scope):
        served = {
            stage: runtime.policies.serving(stage, caller.scope)
            for stage in runtime.policies.stages
        }
    for stage, serving in served.items():
        policy = serving.policy
        async with runtime.database.connection() as conn:
            recent = await reward_log.recent_reward(
                conn, stage=stage, window=window, tenant=caller.scope
            )
            snapshot_version = (
                await snapshots.latest_version(conn, serving.name)
                if serving.learns
                else runtime.settings.tenant_prior_version
            )
        policies.append(
            {
                "stage": stage,
                "policy": serving.name,
                "tenant": caller.scope,
                "learns": serving.learns,
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
