"""``GET /policies``: each stage's policy, how it explores, how much it learned, how it does."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Query

from router.api.deps import ReadCaller, RuntimeDep
from router.estimates import stage_estimates
from router.lifecycle.stages import ESCALATION
from router.runtime import Runtime
from store import rewards as reward_log
from store import snapshots

routes = APIRouter(tags=["policies"])


@routes.get("/policies")
async def list_policies(
    runtime: RuntimeDep,
    caller: ReadCaller,
    window: Annotated[int, Query(ge=1, le=100_000)] = 100,
) -> dict[str, Any]:
    """Per stage: the policy serving the caller's tenant (with a key; else the shared one):
    its name (the ``policy_name`` its decisions log), whether it learns (a tenant's prior
    does not), updates learned (the ``policy_version`` its decisions log), the newest
    snapshot's version, the exploration settings, the mean reward of its last ``window``
    decisions (of the caller's tenant when it has a key, of every tenant otherwise), and per
    arm over the same decisions (``arms``, and per task category or hint in ``groups``):
    the share routed to it, the policy's own probability and estimated reward for it on
    those contexts now, and the observed mean reward of the decisions that chose it."""
    return {"policies": await describe_policies(runtime, window=window, tenant=caller.scope)}


async def describe_policies(
    runtime: Runtime, *, window: int, tenant: str | None
) -> list[dict[str, Any]]:
    """The entries of ``GET /policies``, over the decisions of ``tenant`` (None: all), for
    the policies serving ``tenant`` (None: the shared ones; ``router.tenancy``)."""
    policies = []
    async with runtime.policies.pinned(tenant):  # held in memory while they are estimated
        for stage in runtime.policies.stages:
            serving = runtime.policies.serving(stage, tenant)
            policy = serving.policy
            async with runtime.database.connection() as conn:
                recent = await reward_log.recent_reward(
                    conn, stage=stage, window=window, tenant=tenant
                )
                snapshot_version = (
                    await snapshots.latest_version(conn, serving.name)
                    if serving.learns
                    else runtime.settings.tenant_prior_version
                )
            estimates = await stage_estimates(
                runtime.database,
                stage,
                policy,
                window=window,
                tenant=tenant,
                arms=() if stage == ESCALATION else runtime.pool.names,
            )
            policies.append(
                {
                    "stage": stage,
                    "policy": serving.name,
                    "tenant": tenant,
                    "learns": serving.learns,
                    "updates": policy.updates,
                    "snapshot_version": snapshot_version,
                    "exploration": asdict(policy.config),
                    "vw_args": policy.config.vw_args(),
                    "recent_reward": {
                        "mean": None if recent.mean is None else round(recent.mean, 4),
                        "decisions": recent.decisions,
                        "window": recent.window,
                        "tenant": tenant,
                    },
                    **estimates.as_json(),
                }
            )
    return policies
