"""``/metrics`` scraped from the running service, and request ids on every response."""

from __future__ import annotations

import asyncio
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from store import requests
from store.records import RequestStatus
from tests.router.service.conftest import ServiceFactory

GPT35 = "gpt-3.5-turbo-1106"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def scrape(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


async def test_metrics_count_requests_decisions_rewards_providers_and_spend(
    service: ServiceFactory,
) -> None:
    async with service(replay={"error_rate": 0.5, "seed": 5}, max_attempts=4) as client:
        routed = []
        for i in range(4):
            response = await client.post(
                "/route-and-run",
                json={"messages": user(f"What is {i} + {i}?"), "tenant": "acme"},
                headers={"x-request-id": f"test-{i}"},
            )
            assert response.headers["x-request-id"] == f"test-{i}"
            routed.append(response)
        direct = [
            await client.post(
                "/v1/chat/completions", json={"model": GPT35, "messages": user("hello")}
            )
            for _ in range(8)
        ]
        ok = next(r.json() for r in routed if r.status_code == 200)
        feedback = await client.post("/feedback", json={"request_id": ok["id"], "reward": 0.8})
        await client.get("/requests/00000000-0000-0000-0000-000000000000")
        response = await client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert len(response.headers["x-request-id"]) == 32  # generated when none was sent
    assert feedback.status_code == 201
    got = scrape(response.text)
    http = "signalroute_http_requests_total"
    assert total(got, http, endpoint="/route-and-run", method="POST") == 4
    assert total(got, http, endpoint="/requests/{request_id}", status="404") == 1
    assert total(got, http, endpoint="/replay/v1/chat/completions") > 0  # the replay pool
    assert total(got, "signalroute_http_request_duration_seconds_count", endpoint="/feedback") == 1
    decisions = sum(len(r.json()["trace"]["decisions"]) for r in routed)
    assert total(got, "signalroute_decisions_total") == decisions
    assert total(got, "signalroute_decisions_total", stage="pre") >= 4
    assert total(got, "signalroute_rewards_count", source="immediate") >= 4
    assert total(got, "signalroute_rewards_count", source="user") >= 1
    direct_ok = sum(r.status_code == 200 for r in direct)
    assert 0 < direct_ok < 8, "a 50% error rate leaves some direct calls failed"
    assert total(got, "signalroute_provider_latency_seconds_count", arm=GPT35) >= direct_ok
    errors = total(
        got, "signalroute_provider_errors_total", arm=GPT35, kind="provider_server_error"
    )
    assert errors >= 8 - direct_ok
    assert total(got, "signalroute_tenant_spend_usd", tenant="acme") > 0
    assert total(got, "signalroute_tenant_spend_usd", tenant="default") > 0
    assert total(got, "signalroute_policy_updates", stage="pre") >= 4
    assert ("signalroute_arm_circuit_open", frozenset({("arm", GPT35)})) in got
    assert "signalroute_escalations_total" in response.text
    assert "signalroute_cuts_total" in response.text


async def test_a_metrics_token_guards_the_scrape(service: ServiceFactory) -> None:
    async with service(metrics_token="scrape-me") as client:
        missing = await client.get("/metrics")
        wrong = await client.get("/metrics", headers={"authorization": "Bearer not-it"})
        right = await client.get("/metrics", headers={"authorization": "Bearer scrape-me"})
        health = await client.get("/healthz")
    for refused in (missing, wrong):
        assert refused.status_code == 401
        assert "SIGNALROUTE_METRICS_TOKEN" in refused.json()["error"]["message"]
    assert right.status_code == 200
    assert "signalroute_http_requests_total" in right.text
    assert health.status_code == 200  # the token guards /metrics only


async def test_requests_past_the_writers_backlog_wait_and_all_land(
    service: ServiceFactory, database: Any
) -> None:
    """With a backlog of one row, requests sent together wait for the writer at the door;
    each is answered and stored, and the wait shows on ``/metrics``."""
    async with service(journal_backlog=1) as client:
        responses = await asyncio.gather(
            *(
                client.post(
                    "/route-and-run",
                    json={"messages": user(f"Name a prime above {i}."), "tenant": "acme"},
                )
                for i in range(12)
            )
        )
        assert client.runtime.writer is not None
        await client.runtime.writer.drain()
        got = scrape((await client.get("/metrics")).text)

    assert [r.status_code for r in responses] == [200] * 12
    assert total(got, "signalroute_journal_writer", kind="admissions_waited") >= 1
    assert total(got, "signalroute_journal_writer", kind="backlog") == 0
    async with database.connection() as conn:
        for response in responses:
            request = await requests.get_request(conn, response.json()["id"])
            assert request.status == RequestStatus.COMPLETED
