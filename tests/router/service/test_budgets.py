"""Budgets: spend is a routing signal, a used-up budget is a 402 naming what remains, and
a tenant's spend survives a restart."""

from __future__ import annotations

from typing import Any

import pytest

from router.tools.replay_pool.dataset import ReplayDataset
from tests.router.service.conftest import ServiceFactory

GPT4 = "gpt-4-1106-preview"


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


@pytest.fixture
def prompt_and_cost(replay_dataset: ReplayDataset) -> tuple[str, float]:
    record = next(r for r in replay_dataset if r.task == "mbpp" and r.split == "test")
    return record.prompt, record.outcome(GPT4).cost_usd


async def test_a_used_up_tenant_budget_is_402_and_survives_a_restart(
    service: ServiceFactory, prompt_and_cost: tuple[str, float]
) -> None:
    prompt, cost = prompt_and_cost
    budget = cost * 1.5  # one gpt-4 answer fits; two do not
    body = {"model": GPT4, "messages": user(prompt), "tenant": "acme"}
    async with service(tenant_budget_usd=budget) as client:
        first = await client.post("/v1/chat/completions", json=body)
        routed = await client.post(
            "/route-and-run", json={"messages": user(prompt), "tenant": "acme"}
        )
        # the routed answer's cost depends on the arms drawn: spend more until refused
        more = [await client.post("/v1/chat/completions", json=body) for _ in range(2)]
        refused = more[-1]
        refused_routing = await client.post(
            "/route-and-run", json={"messages": user(prompt), "tenant": "acme"}
        )
        other_tenant = await client.post("/v1/chat/completions", json={**body, "tenant": "beta"})
    async with service(tenant_budget_usd=budget) as client:
        after_restart = await client.post("/v1/chat/completions", json=body)

    assert (first.status_code, routed.status_code) == (200, 200)
    # spend is a routing signal: the routed request saw two thirds of the budget used
    pre = routed.json()["trace"]["decisions"][0]
    assert pre["signals"]["historical"]["budget_used"] == pytest.approx(cost / budget, abs=1e-3)
    assert refused.status_code == 402
    error = refused.json()["error"]
    assert error["code"] == "budget_exceeded"
    assert "tenant 'acme' has used its budget" in error["message"]
    assert "$0.000000 remaining" in error["message"]
    assert refused.headers["x-signalroute-budget-remaining-usd"] == "0.000000"
    assert refused_routing.status_code == 402
    assert other_tenant.status_code == 200
    assert after_restart.status_code == 402, "spend is restored from the store at start-up"


async def test_a_session_budget_caps_one_session_only(
    service: ServiceFactory, prompt_and_cost: tuple[str, float]
) -> None:
    prompt, cost = prompt_and_cost
    body = {"model": GPT4, "messages": user(prompt)}
    async with service(session_budget_usd=cost / 2) as client:
        first = await client.post("/v1/chat/completions", json={**body, "session": "s1"})
        again = await client.post("/v1/chat/completions", json={**body, "session": "s1"})
        other = await client.post("/v1/chat/completions", json={**body, "session": "s2"})
        sessionless = await client.post("/v1/chat/completions", json=body)
    assert first.status_code == 200
    assert again.status_code == 402
    assert "session 's1' of tenant 'default' has used its budget" in again.text
    assert (other.status_code, sessionless.status_code) == (200, 200)
