"""API keys and tenants end to end: 401 without a valid key, the key decides the tenant, and
one tenant's history and requests never reach another's."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from store import api_keys
from store.database import Database
from tests.router.service.conftest import ServiceFactory
from tests.router.service.keys import bearer, new_key
from tests.router.service.test_openai_client import openai_client

PROMPT = "Write a python function to check whether a number is a perfect square."


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def ask(text: str) -> list[ChatCompletionMessageParam]:
    return [{"role": "user", "content": text}]


def neighbours(body: dict[str, Any]) -> float:
    """The neighbour count signal of the request's pre-generation decision."""
    pre = next(d for d in body["trace"]["decisions"] if d["stage"] == "pre")
    return float(pre["signals"]["historical"]["neighbours"])


async def test_requests_without_a_valid_key_are_401(
    service: ServiceFactory, database: Database
) -> None:
    token, _key = await new_key(database, "acme")
    revoked, old = await new_key(database, "acme")
    async with database.connection() as conn:
        await api_keys.revoke_key(conn, old.id)
    async with service(auth="keys") as client:
        missing = await client.post("/route-and-run", json={"messages": user("hi")})
        unknown = await client.get("/v1/models", headers=bearer("sr-" + "x" * 43))
        gone = await client.post(
            "/v1/chat/completions",
            json={"model": "signalroute/auto", "messages": user("hi")},
            headers=bearer(revoked),
        )
        with pytest.raises(openai.AuthenticationError, match="no such key"):
            await openai_client(client, "sr-not-a-key").models.list()
        models = await client.get("/v1/models", headers=bearer(token))
        health = await client.get("/healthz")
        metrics = await client.get("/metrics")

    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert "missing API key" in missing.json()["error"]["message"]
    assert missing.json()["error"]["code"] == "invalid_api_key"
    assert unknown.status_code == 401
    assert "no such key" in unknown.json()["error"]["message"]
    assert gone.status_code == 401
    assert "was revoked" in gone.json()["error"]["message"]
    assert models.status_code == 200
    assert (health.status_code, metrics.status_code) == (200, 200)


async def test_tenants_never_see_each_others_history_requests_or_feedback(
    service: ServiceFactory, database: Database
) -> None:
    acme, acme_key = await new_key(database, "acme")
    acme_other, _ = await new_key(database, "acme")
    beta, _ = await new_key(database, "beta")
    async with service(auth="keys") as client:

        async def route(token: str, **extra: Any) -> dict[str, Any]:
            response = await client.post(
                "/route-and-run", json={"messages": user(PROMPT), **extra}, headers=bearer(token)
            )
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            assert client.runtime.writer is not None
            await client.runtime.writer.drain()  # stored: a neighbour for the next request
            return body

        first = await route(acme)
        second = await route(acme)
        foreign = await route(beta)

        spoofed = await client.post(
            "/route-and-run",
            json={"messages": user(PROMPT), "tenant": "beta"},
            headers=bearer(acme),
        )
        beta_reads = await client.get(f"/requests/{first['id']}", headers=bearer(beta))
        colleague_reads = await client.get(f"/requests/{first['id']}", headers=bearer(acme_other))
        feedback = {"request_id": first["id"], "reward": 0.1}
        by_beta = await client.post("/feedback", json=feedback, headers=bearer(beta))
        decision_id = first["trace"]["decisions"][0]["decision_id"]
        by_beta_decision = await client.post(
            "/feedback", json={"decision_id": decision_id, "reward": 0.1}, headers=bearer(beta)
        )
        by_colleague = await client.post("/feedback", json=feedback, headers=bearer(acme_other))
        by_owner = await client.post("/feedback", json=feedback, headers=bearer(acme))
        stored = (await client.get(f"/requests/{first['id']}", headers=bearer(acme))).json()

    assert neighbours(first) == 0.0
    assert neighbours(second) > 0.0  # acme's first request is acme's neighbour
    assert neighbours(foreign) == 0.0  # ... and never beta's
    assert spoofed.status_code == 403
    assert "belongs to tenant 'acme'" in spoofed.json()["error"]["message"]
    assert beta_reads.status_code == 404
    assert colleague_reads.status_code == 200
    assert by_beta.status_code == 404
    assert first["id"] in by_beta.json()["error"]["message"]
    assert by_beta_decision.status_code == 404
    assert first["id"] not in by_beta_decision.json()["error"]["message"]
    assert by_colleague.status_code == 403
    assert "key that made the request" in by_colleague.json()["error"]["message"]
    assert by_owner.status_code == 201, by_owner.text
    assert stored["tenant"] == "acme"
    async with database.connection() as conn:
        cursor = await conn.execute(
            "SELECT tenant, api_key_id FROM requests ORDER BY created_at"
        )  # test-only read of what the service wrote
        rows = await cursor.fetchall()
    assert [r[0] for r in rows] == ["acme", "acme", "beta"]
    assert rows[0][1] == acme_key.id


async def test_an_openai_client_acts_for_its_keys_tenant(
    service: ServiceFactory, database: Database
) -> None:
    token, key = await new_key(database, "acme")
    async with service(auth="keys") as client:
        api = openai_client(client, token)
        completion = await api.chat.completions.create(
            model="signalroute/auto", messages=ask(PROMPT)
        )
        direct = await api.chat.completions.create(model="gpt-3.5-turbo-1106", messages=ask(PROMPT))
        with pytest.raises(openai.PermissionDeniedError):
            await api.chat.completions.create(
                model="signalroute/auto", messages=ask(PROMPT), extra_body={"tenant": "beta"}
            )
        request_ids = [
            (completion.model_extra or {})["signalroute"]["request_id"],
            (direct.model_extra or {})["signalroute"]["request_id"],
        ]
        records = [
            (await client.get(f"/requests/{rid}", headers=bearer(token))).json()
            for rid in request_ids
        ]
    assert [r["tenant"] for r in records] == ["acme", "acme"]
    async with database.connection() as conn:
        cursor = await conn.execute("SELECT DISTINCT api_key_id FROM requests")
        assert await cursor.fetchall() == [(key.id,)]
