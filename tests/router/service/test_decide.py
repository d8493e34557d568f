"""Decide-only routing (``POST /route``) over real HTTP: the router draws and logs the arm
with its propensity and calls no model; the caller's outcome comes back as feedback and the
pre-generation policy learns from it as from any decision."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pytest

from learner.context import Context
from router.api.schemas import RUN_FIELDS, RouteAndRunBody, RouteBody
from router.lifecycle.stages import PRE_GENERATION
from router.pool import demo_pool
from router.settings import Settings
from tests.router.fake_openai import FakeOpenAI
from tests.router.service.conftest import ServiceFactory

PROMPT = "Write a python function to check whether a number is a perfect square."


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


async def pre_updates(client: Any) -> int:
    policies = (await client.get("/policies")).json()["policies"]
    return int(next(p["updates"] for p in policies if p["stage"] == PRE_GENERATION))


async def test_route_decides_logs_the_propensity_and_calls_no_model(
    service: ServiceFactory,
) -> None:
    fake = FakeOpenAI()
    async with service(provider_app=fake.app()) as client:
        response = await client.post(
            "/route",
            json={
                "messages": user(PROMPT),
                "hints": {"task": "code"},
                "objective": {"lambda_cost": 0.5},
            },
        )
        called_after_route = len(fake.bodies)
        body = response.json()
        logged = (await client.get(f"/requests/{body['request_id']}")).json()
        ran = await client.post("/route-and-run", json={"messages": user(PROMPT)})

    assert response.status_code == 200, response.text
    assert response.headers["x-signalroute-request-id"] == body["request_id"]
    assert called_after_route == 0  # deciding called no model...
    assert ran.status_code == 200
    assert fake.bodies  # ...while running does
    arms = {arm.name: arm for arm in demo_pool().arms}
    chosen = arms[body["arm"]]
    assert body["model"] == chosen.model
    assert body["base_url"].endswith("/replay/v1")
    assert body["stage"] == PRE_GENERATION
    assert set(body["pmf"]) | set(body["masked"]) == set(arms)
    assert body["probability"] == pytest.approx(body["pmf"][body["arm"]])
    assert sum(body["pmf"].values()) == pytest.approx(1.0)
    assert body["signals"]["query"]["code_hint"] == 1.0
    assert "historical" in body["signals"]

    assert logged["status"] == "delegated"
    assert logged["model"] == body["arm"]
    assert logged["params"]["hints"] == {"task": "code"}
    assert logged["params"]["objective"]["lambda_cost"] == 0.5
    default_latency_ref = Settings.model_fields["latency_ref_ms"].default
    assert logged["params"]["objective"]["latency_ref_ms"] == default_latency_ref
    [decision] = logged["decisions"]
    assert decision["decision_id"] == body["decision_id"]
    assert decision["arm"] == body["arm"]
    assert decision["probability"] == pytest.approx(body["probability"])
    assert decision["pmf"] == pytest.approx(body["pmf"])
    assert decision["policy_version"] == body["policy_version"]
    assert decision["outcome"] == "delegated"
    assert decision["rewards"] == []


async def test_feedback_on_a_decided_request_is_learned(service: ServiceFactory) -> None:
    async with service() as client:
        before = await pre_updates(client)
        decided = (await client.post("/route", json={"messages": user("2 + 2 = ?")})).json()
        logged = (await client.get(f"/requests/{decided['request_id']}")).json()
        context = Context.from_json(logged["decisions"][0]["context"])
        policy = client.runtime.policies.get(PRE_GENERATION)
        pmf_before = policy.pmf(context)
        first = await client.post(
            "/feedback",
            json={"request_id": decided["request_id"], "reward": 1.0, "idempotency_key": "k1"},
        )
        again = await client.post(
            "/feedback",
            json={"request_id": decided["request_id"], "reward": 1.0, "idempotency_key": "k1"},
        )
        after = await pre_updates(client)
        pmf_after = policy.pmf(context)
        rewarded = (await client.get(f"/requests/{decided['request_id']}")).json()

    assert decided["policy_version"] == before
    assert first.status_code == 201, first.text
    assert first.json()["decision_id"] == decided["decision_id"]
    assert first.json()["policy_updates"] == before + 1
    assert again.status_code == 200
    assert again.json()["duplicate"] is True
    assert after == before + 1  # learned once
    assert not np.allclose(pmf_before, pmf_after)
    assert [r["value"] for r in rewarded["decisions"][0]["rewards"]] == [1.0]


async def test_route_refuses_what_it_cannot_decide(service: ServiceFactory) -> None:
    async with service() as client:
        streamed = await client.post("/route", json={"messages": user("hi"), "stream": True})
        staged = await client.post(
            "/route", json={"messages": user("hi"), "stages": {"escalation": False}}
        )
        empty = await client.post("/route", json={"messages": []})
        unservable = await client.post(
            "/route",
            json={"messages": user("hi"), "constraints": {"capabilities": ["teleportation"]}},
        )
        async with client.runtime.database.connection() as conn:
            cursor = await conn.execute("SELECT count(*) FROM requests")
            row = await cursor.fetchone()

    for response in (streamed, staged):
        assert response.status_code == 400, response.text
        assert "runs no model" in response.json()["error"]["message"]
    assert "stream" in streamed.json()["error"]["message"]
    assert "stages" in staged.json()["error"]["message"]
    assert empty.status_code == 400
    assert "messages" in empty.json()["error"]["message"]
    assert 400 <= unservable.status_code < 500
    assert "teleportation" in unservable.json()["error"]["message"]
    assert row is not None
    assert row[0] == 0  # nothing refused was logged


async def test_a_decided_turn_is_the_conversations_previous_arm(service: ServiceFactory) -> None:
    first = user("What is the capital of France?")
    follow_up = [
        *first,
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "And of Italy?"},
    ]
    async with service() as client:
        decided = (await client.post("/route", json={"messages": first})).json()
        again = (await client.post("/route", json={"messages": follow_up})).json()
        logged = (await client.get(f"/requests/{again['request_id']}")).json()

    context = Context.from_json(logged["decisions"][0]["context"])
    previous = [
        name
        for name, arm in zip(context.arm_names, context.arms, strict=True)
        if arm.namespaces.get("A", {}).get("prev_turn") == 1.0
    ]
    assert previous == [decided["arm"]]


def test_route_takes_route_and_runs_fields_but_those_of_the_run() -> None:
    run_only = set(RouteAndRunBody.model_fields) - set(RouteBody.model_fields)
    assert run_only == set(RUN_FIELDS)
    assert set(RouteBody.model_fields) < set(RouteAndRunBody.model_fields)


async def test_the_draw_reuses_the_requests_check_only_while_no_call_was_recorded(
    service: ServiceFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The arms' health is read once for a request when nothing happened between its check
    and its draw; a call begun in between (another request's) makes the draw read it again,
    and the decision sees that call in flight."""
    async with service() as client:
        runtime = client.runtime
        arms = runtime.pool.names
        snapshots: list[str] = []
        snapshot = runtime.health.snapshot

        def counted(arm: str) -> Any:
            snapshots.append(arm)
            return snapshot(arm)

        monkeypatch.setattr(runtime.health, "snapshot", counted)
        quiet = (await client.post("/route", json={"messages": user("2 + 2 = ?")})).json()
        read_quietly = list(snapshots)

        busy_arm = arms[0]
        previous_arm = runtime.router._previous_arm

        async def another_call_begins(request: Any) -> str | None:
            runtime.health.started(busy_arm)  # as another request's model call would
            return await previous_arm(request)

        monkeypatch.setattr(runtime.router, "_previous_arm", another_call_begins)
        snapshots.clear()
        busy = (await client.post("/route", json={"messages": user("3 + 3 = ?")})).json()
        runtime.health.cancelled(busy_arm)
        contexts = [
            Context.from_json((await client.get(f"/requests/{r['request_id']}")).json()[
                "decisions"][0]["context"])
            for r in (quiet, busy)
        ]  # fmt: skip

    rule_checks = Counter(read_quietly) - Counter(arms)
    assert Counter(read_quietly) == Counter(arms) + rule_checks  # once per arm, not twice,
    assert sum(rule_checks.values()) == 1  # and the rule's arm once more: is it degraded?
    # the check, then the draw again (and the rule's check)
    assert Counter(snapshots) == Counter(arms * 2) + rule_checks
    in_flight = [float(c.arms[c.index(busy_arm)].namespaces["S"]["in_flight"]) for c in contexts]
    assert in_flight[0] == 0.0
    assert in_flight[1] > 0.0  # the draw saw the call begun after the check
