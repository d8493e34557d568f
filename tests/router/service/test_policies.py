"""``GET /policies``: each stage's updates, exploration settings and recent reward."""

from __future__ import annotations

from typing import Any

import pytest

from store.database import Database
from tests.router.service.conftest import ServiceFactory
from tests.router.service.keys import bearer, new_key


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


async def test_policies_show_learning_exploration_and_recent_reward(
    service: ServiceFactory, database: Database
) -> None:
    token, _ = await new_key(database, "acme")
    idle, _ = await new_key(database, "idle")
    # Each tenant has its own policies from its first request (docs/tenants.md).
    async with service(auth="keys", snapshot_every=2, tenant_min_rewards=0) as client:
        for i in range(3):
            response = await client.post(
                "/route-and-run",
                json={"messages": user(f"Name a colour, {i}.")},
                headers=bearer(token),
            )
            assert response.status_code == 200, response.text
        body = (await client.get("/policies?window=2", headers=bearer(token))).json()
        other = (await client.get("/policies", headers=bearer(idle))).json()
        bad = await client.get("/policies?window=0", headers=bearer(token))

    by_stage = {p["stage"]: p for p in body["policies"]}
    pre = by_stage["pre"]
    assert (pre["policy"], pre["tenant"], pre["learns"]) == ("pre:tenant:acme", "acme", True)
    assert pre["updates"] >= 3
    assert pre["snapshot_version"] is not None
    assert pre["snapshot_version"] >= 1
    assert pre["exploration"]["exploration"] == "squarecb"
    assert pre["exploration"]["epsilon"] == pytest.approx(0.1)
    assert "--squarecb" in pre["vw_args"]
    recent = pre["recent_reward"]
    assert recent["window"] == 2
    assert recent["decisions"] == 2
    assert 0.0 <= recent["mean"] <= 1.0
    assert recent["tenant"] == "acme"
    other_pre = next(p for p in other["policies"] if p["stage"] == "pre")
    assert (other_pre["policy"], other_pre["updates"]) == ("pre:tenant:idle", 0)  # unmoved
    assert other_pre["recent_reward"] == {
        "mean": None,
        "decisions": 0,
        "window": 100,
        "tenant": "idle",
    }
    assert bad.status_code == 400


def pre_arms(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    pre = next(p for p in body["policies"] if p["stage"] == "pre")
    return {a["arm"]: a for a in pre["arms"]}


async def test_policies_per_arm_estimates_follow_feedback(service: ServiceFactory) -> None:
    """Each stage lists every arm with its share, the policy's estimate on the recent
    contexts and the observed reward; feedback that favours one arm raises its estimate
    above the others'."""
    plain = {"judge": "never", "escalation": False, "components": False}
    async with service() as client:
        pool = client.runtime.pool.names
        chosen: list[tuple[str, str]] = []
        for i in range(16):
            response = await client.post(
                "/route-and-run",
                json={"messages": user(f"Name a colour, {i}."), "stages": plain},
            )
            assert response.status_code == 200, response.text
            pre = next(d for d in response.json()["trace"]["decisions"] if d["stage"] == "pre")
            chosen.append((pre["decision_id"], pre["arm"]))
        before = pre_arms((await client.get("/policies?window=16")).json())
        counts = {arm: sum(1 for _, a in chosen if a == arm) for arm in pool}
        target = max(counts, key=lambda arm: counts[arm])
        for decision_id, arm in chosen:
            response = await client.post(
                "/feedback",
                json={"decision_id": decision_id, "reward": 1.0 if arm == target else 0.0},
            )
            assert response.status_code == 201, response.text
        body = (await client.get("/policies?window=16")).json()

    after = pre_arms(body)
    assert set(pool) <= set(after)
    assert sum(a["decisions"] for a in after.values()) == 16
    assert sum(a["share"] for a in after.values()) == pytest.approx(1.0, abs=1e-3)
    assert after[target]["decisions"] == counts[target]
    rivals = [a for a, e in after.items() if a != target and e["eligible"]]
    assert rivals
    for arm in rivals:
        assert after[target]["estimated_reward"] > after[arm]["estimated_reward"], arm
    # The lead the feedback gave it: larger than before (the shared weights move too, so
    # the estimates are compared with each other, not with themselves).

    def lead(arms: dict[str, dict[str, Any]]) -> float:
        best_rival = max(arms[a]["estimated_reward"] for a in rivals)
        return float(arms[target]["estimated_reward"] - best_rival)

    assert lead(after) > lead(before)
    assert after[target]["probability"] >= max(after[a]["probability"] for a in rivals)
    for arm in rivals:
        if after[arm]["rewarded"]:
            assert after[arm]["observed_reward"] < after[target]["observed_reward"], arm
    groups = next(p for p in body["policies"] if p["stage"] == "pre")["groups"]
    assert groups
    assert all(g["group"].startswith(("category:", "hint:")) for g in groups)
    assert sum(a["decisions"] for a in groups[0]["arms"]) == groups[0]["decisions"]
