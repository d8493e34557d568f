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
