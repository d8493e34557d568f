"""Traffic for dashboard tests: routed requests of the demo pool, each with feedback."""

from __future__ import annotations

from typing import Any

from router.tools.replay_pool.dataset import ReplayDataset
from tests.router.service.conftest import ServiceClient


async def send_traffic(
    client: ServiceClient,
    dataset: ReplayDataset,
    count: int,
    *,
    headers: dict[str, str] | None = None,
    session: str | None = None,
) -> list[dict[str, Any]]:
    """Route ``count`` recorded prompts of several tasks and send a user reward for each;
    returns the responses' bodies."""
    tasks = sorted({record.task for record in dataset})
    records = [next(r for r in dataset if r.task == task) for task in tasks]
    bodies = []
    for i in range(count):
        record = records[i % len(records)]
        payload: dict[str, Any] = {"messages": [{"role": "user", "content": record.prompt}]}
        if session is not None:
            payload["session"] = session
        response = await client.post("/route-and-run", json=payload, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        feedback = await client.post(
            "/feedback",
            json={"request_id": body["id"], "reward": 1.0 if i % 3 else 0.2},
            headers=headers,
        )
        assert feedback.status_code == 201, feedback.text
        bodies.append(body)
    return bodies
