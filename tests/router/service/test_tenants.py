"""Tenants cannot steer each other's routing, and one source's reward on one decision counts
once, end to end through the running service in keys mode."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from learner.context import Context
from learner.vw_policy import VWPolicy
from router.policies import PRE_GENERATION
from store.database import Database
from tests.router.service.conftest import ServiceClient, ServiceFactory
from tests.router.service.keys import bearer, new_key

PROMPT = "Write a python function to check whether a number is a perfect square."
PRE_ONLY = {"escalation": False, "components": False, "judge": "never"}


async def route(client: httpx.AsyncClient, token: str, prompt: str = PROMPT) -> dict[str, Any]:
    response = await client.post(
        "/route-and-run",
        json={"messages": [{"role": "user", "content": prompt}], "stages": PRE_ONLY},
        headers=bearer(token),
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


async def pre_decision(client: httpx.AsyncClient, token: str, request_id: str) -> dict[str, Any]:
    logged = await client.get(f"/requests/{request_id}", headers=bearer(token))
    return dict(next(d for d in logged.json()["decisions"] if d["stage"] == PRE_GENERATION))


async def policies(client: httpx.AsyncClient, token: str) -> dict[str, dict[str, Any]]:
    listed = (await client.get("/policies", headers=bearer(token))).json()["policies"]
    return {p["stage"]: p for p in listed}


async def decide(client: httpx.AsyncClient, token: str) -> dict[str, Any]:
    """``POST /route``: a decision drawn and logged, no model called, nothing learned."""
    response = await client.post(
        "/route",
        json={"messages": [{"role": "user", "content": PROMPT}]},
        headers=bearer(token),
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def pmf(client: ServiceClient, tenant: str, context: Context) -> list[float]:
    """The PMF ``tenant``'s policy gives now for ``context`` (in-process: the decide-only
    endpoint lives elsewhere)."""
    return client.runtime.policies.serving(PRE_GENERATION, tenant).policy.pmf(context)


async def test_a_flood_of_reward_0_from_one_tenant_leaves_anothers_policies_unchanged(
    service: ServiceFactory, database: Database
) -> None:
    acme, _ = await new_key(database, "acme")
    beta, _ = await new_key(database, "beta")
    # Anchoring off: the PMF beta gets is then its policy's own, which a copy can recompute.
    async with service(auth="keys", tenant_min_rewards=4, anchor=False) as client:
        for _ in range(6):  # beta gets its own pre-generation policy and learns a little
            routed = await route(client, beta)
            feedback = await client.post(
                "/feedback", json={"request_id": routed["id"], "reward": 1.0}, headers=bearer(beta)
            )
            assert feedback.status_code == 201, feedback.text
        decision = await pre_decision(client, beta, routed["id"])
        context = Context.from_json(decision["context"])
        beta_before = await policies(client, beta)
        pmf_before = pmf(client, "beta", context)
        served = client.runtime.policies.serving(PRE_GENERATION, "beta").policy
        beta_copy = VWPolicy.restore(served.state())  # beta's policy before the flood
        decided_before = await decide(client, beta)
        acme_start = await policies(client, acme)

        for index in range(40):  # acme: reward 0 on each of its requests, the same prompt
            flooded = await route(client, acme)
            for key in (f"flood-{index}", None):
                await client.post(
                    "/feedback",
                    json={"request_id": flooded["id"], "reward": 0.0, "idempotency_key": key},
                    headers=bearer(acme),
                )

        beta_after = await policies(client, beta)
        pmf_after = pmf(client, "beta", context)
        # POST /route: the PMF beta's decide-only request gets now is what its policy from
        # before the flood gives on that request's context (system signals may have moved).
        decided_after = await decide(client, beta)
        decided_context = Context.from_json(
            (await pre_decision(client, beta, decided_after["request_id"]))["context"]
        )
        expected = dict(zip(decided_context.arm_names, beta_copy.pmf(decided_context), strict=True))
        beta_copy.close()
        acme_after = await policies(client, acme)
        acme_decision = await pre_decision(client, acme, flooded["id"])
        metrics = (await client.get("/metrics")).text

    assert decision["policy"] == "pre:tenant:beta"  # drawn from beta's own policy
    assert beta_before["pre"]["policy"] == "pre:tenant:beta"
    assert beta_before["pre"]["learns"] is True
    assert beta_before["pre"]["updates"] > 0
    for stage, before in beta_before.items():
        assert beta_after[stage]["updates"] == before["updates"], stage
        assert beta_after[stage]["policy"] == before["policy"], stage
    assert pmf_after == pmf_before  # exactly: nothing acme sent reached beta's policy
    assert decided_after["policy"] == decided_before["policy"] == "pre:tenant:beta"
    assert decided_after["policy_version"] == decided_before["policy_version"]
    assert decided_after["pmf"] == pytest.approx(expected)
    # The flood did reach acme's own policy (so the check above could fail).
    assert acme_start["pre"]["policy"] == "pre:prior"
    assert acme_start["pre"]["learns"] is False
    assert acme_after["pre"]["policy"] == "pre:tenant:acme"
    assert acme_after["pre"]["updates"] > 40
    assert acme_decision["policy"] == "pre:tenant:acme"
    assert flooded["trace"]["decisions"][0]["policy"] == "pre:tenant:acme"  # the caller sees it
    assert acme_decision["policy_version"] > 0
    assert 'signalroute_tenants_in_memory{kind="tenants"} 2.0' in metrics
    assert 'signalroute_tenants_in_memory{kind="policies"} 2.0' in metrics  # pre of each


async def test_in_shared_mode_the_same_flood_moves_everyones_policy(
    service: ServiceFactory, database: Database
) -> None:
    """The control of the test above: tenants opted into the shared policy do steer each
    other, so the isolation is what kept beta's policy still."""
    acme, _ = await new_key(database, "acme")
    beta, _ = await new_key(database, "beta")
    async with service(auth="keys", shared_tenants=["*"]) as client:
        routed = await route(client, beta)
        context = Context.from_json((await pre_decision(client, beta, routed["id"]))["context"])
        before = pmf(client, "beta", context)
        for _ in range(10):
            flooded = await route(client, acme)
            await client.post(
                "/feedback",
                json={"request_id": flooded["id"], "reward": 0.0},
                headers=bearer(acme),
            )
        after = pmf(client, "beta", context)
        listed = await policies(client, beta)
    assert listed["pre"]["policy"] == "pre"
    assert after != before


async def test_five_rewards_of_one_source_on_one_request_move_the_policy_as_one_does(
    service: ServiceFactory, database: Database
) -> None:
    acme, _ = await new_key(database, "acme")
    async with service(auth="keys", tenant_min_rewards=0) as client:
        routed = await route(client, acme)
        decision = await pre_decision(client, acme, routed["id"])
        context = Context.from_json(decision["context"])
        policy = client.runtime.policies.serving(PRE_GENERATION, "acme").policy
        reference = VWPolicy.restore(policy.state())  # what learning the reward once gives
        reference.learn(context, decision["arm"], decision["probability"], 0.0)
        updates = policy.updates
        responses = [
            await client.post(
                "/feedback",
                json={"decision_id": decision["decision_id"], "reward": 0.0, **key},
                headers=bearer(acme),
            )
            for key in ({"idempotency_key": "one"}, {}, {"idempotency_key": "two"}, {}, {})
        ]
        learned = policy.pmf(context)
        logged = (await client.get(f"/requests/{routed['id']}", headers=bearer(acme))).json()
        listed = await policies(client, acme)

    bodies = [r.json() for r in responses]
    assert [r.status_code for r in responses] == [201] * 5  # each recorded...
    assert [b["counted"] for b in bodies] == [True, False, False, False, False]  # ...one learned
    assert bodies[0]["policy"] == "pre:tenant:acme"
    assert bodies[0]["policy_updates"] == updates + 1
    assert all(b["policy_updates"] is None for b in bodies[1:])
    assert f"reward {bodies[0]['reward_id']}" in bodies[1]["note"]
    assert "learned once" in bodies[1]["note"]
    assert policy.updates == updates + 1
    assert listed["pre"]["updates"] == updates + 1
    assert learned == reference.pmf(context)
    user_rewards = [r for d in logged["decisions"] for r in d["rewards"] if r["source"] == "user"]
    assert [r["counted"] for r in user_rewards] == [True, False, False, False, False]
    reference.close()


async def test_feedback_after_the_window_is_refused(
    service: ServiceFactory, database: Database
) -> None:
    acme, _ = await new_key(database, "acme")
    async with service(auth="keys", feedback_window_days=0.5 / 86400) as client:  # 0.5 s
        routed = await route(client, acme)
        await asyncio.sleep(0.6)
        late = await client.post(
            "/feedback", json={"request_id": routed["id"], "reward": 1.0}, headers=bearer(acme)
        )
        logged = (await client.get(f"/requests/{routed['id']}", headers=bearer(acme))).json()
    assert late.status_code == 422
    error = late.json()["error"]
    assert error["code"] == "feedback_window_closed"
    assert "feedback is accepted for 0.5 s after a decision" in error["message"]
    assert "SIGNALROUTE_FEEDBACK_WINDOW_DAYS" in error["message"]
    sources = {r["source"] for d in logged["decisions"] for r in d["rewards"]}
    assert "user" not in sources  # nothing was recorded
