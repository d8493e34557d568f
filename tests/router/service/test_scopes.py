"""API key scopes over real HTTP: each endpoint needs its scope, a key without it gets 403
naming the scope, ``admin`` may do everything, and local mode checks nothing."""

from __future__ import annotations

from typing import Any

import httpx

from store.database import Database
from tests.router.service.conftest import ServiceClient, ServiceFactory
from tests.router.service.keys import bearer, new_key

MESSAGES: list[dict[str, Any]] = [{"role": "user", "content": "What is the capital of France?"}]


async def call(client: ServiceClient, token: str, endpoint: str, **extra: Any) -> httpx.Response:
    """One request of each kind the scopes govern."""
    headers = bearer(token)
    if endpoint == "route":
        return await client.post("/route", json={"messages": MESSAGES}, headers=headers)
    if endpoint == "route-and-run":
        return await client.post("/route-and-run", json={"messages": MESSAGES}, headers=headers)
    if endpoint == "chat":
        chat = {"model": "signalroute/auto", "messages": MESSAGES}
        return await client.post("/v1/chat/completions", json=chat, headers=headers)
    if endpoint == "models":
        return await client.get("/v1/models", headers=headers)
    if endpoint == "feedback":
        reward = {"request_id": extra["request_id"], "reward": 1.0}
        return await client.post("/feedback", json=reward, headers=headers)
    if endpoint == "request":
        return await client.get(f"/requests/{extra['request_id']}", headers=headers)
    if endpoint == "dashboard":
        return await client.get("/dashboard/api/overview", headers=headers)
    assert endpoint == "policies"
    return await client.get("/policies", headers=headers)


NEEDS = {
    "route": "route",
    "route-and-run": "route",
    "chat": "route",
    "models": "route",
    "feedback": "feedback",
    "request": "read",
    "policies": "read",
    "dashboard": "read",
}


async def test_each_endpoint_needs_its_scope(service: ServiceFactory, database: Database) -> None:
    keys = {
        scope: (await new_key(database, "acme", [scope]))[0]
        for scope in ("route", "feedback", "read", "admin")
    }
    default, _ = await new_key(database, "acme")
    async with service(auth="keys") as client:
        # Feedback must come with the key that made the request: the admin key (which may
        # route) rewards its own request; the others one of the default key's.
        own = {}
        for token in (default, keys["admin"]):
            routed = await call(client, token, "route")
            assert routed.status_code == 200, routed.text
            own[token] = routed.json()["request_id"]
        answers = {
            (scope, endpoint): await call(
                client, token, endpoint, request_id=own.get(token, own[default])
            )
            for scope, token in keys.items()
            for endpoint in NEEDS
        }
        defaults = {
            endpoint: await call(client, default, endpoint, request_id=own[default])
            for endpoint in NEEDS
        }

    for (scope, endpoint), response in answers.items():
        needed = NEEDS[endpoint]
        if (scope, endpoint) == ("feedback", "feedback"):  # in scope, but not its request
            assert response.status_code == 403
            assert "made with another API key" in response.json()["error"]["message"]
        elif scope in (needed, "admin"):
            assert response.status_code < 400, (scope, endpoint, response.text)
        else:
            assert response.status_code == 403, (scope, endpoint, response.text)
            error = response.json()["error"]
            assert f"lacks the '{needed}' scope" in error["message"]
            assert f"it has: {scope}" in error["message"]
    for endpoint, response in defaults.items():
        assert response.status_code < 400, (endpoint, response.text)


async def test_the_scope_is_checked_before_the_body(
    service: ServiceFactory, database: Database
) -> None:
    reader, _ = await new_key(database, "acme", ["read"])
    async with service(auth="keys") as client:
        response = await client.post("/route", json={"nonsense": True}, headers=bearer(reader))
        unscoped = await client.post("/feedback", json={}, headers=bearer(reader))

    assert response.status_code == 403
    assert "'route' scope" in response.json()["error"]["message"]
    assert unscoped.status_code == 403
    assert "'feedback' scope" in unscoped.json()["error"]["message"]


async def test_local_mode_checks_no_scope(service: ServiceFactory) -> None:
    async with service() as client:
        routed = await client.post("/route", json={"messages": MESSAGES})
        policies = await client.get("/policies")

    assert (routed.status_code, policies.status_code) == (200, 200)
