"""Route a request, then send the reward your application measured (a test that passed, a
thumbs-down) with `POST /feedback`, and read back what was logged.

Run it against a running service: `python feedback_loop.py http://127.0.0.1:8000`.
"""

import sys
from typing import Any

import httpx


def passes_my_check(answer: str) -> bool:
    """Stands for your own downstream check: a test suite, a parser, a user's thumbs."""
    return "def " in answer


def main(base_url: str = "http://127.0.0.1:8000", api_key: str | None = None) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
    with httpx.Client(base_url=base_url, headers=headers, timeout=60) as client:
        routed = client.post(
            "/route-and-run",
            json={
                "messages": [{"role": "user", "content": "Write a function to reverse a list."}],
                "user": "alice",
            },
        )
        routed.raise_for_status()
        answer = routed.json()
        print(answer["model"], "answered for", answer["cost_usd"], "USD")

        # Later: the outcome. Idempotent: the same key is recorded once however often sent.
        reward = 1.0 if passes_my_check(answer["output"]) else 0.0
        feedback = client.post(
            "/feedback",
            json={
                "request_id": answer["id"],
                "reward": reward,
                "source": "tests",
                "idempotency_key": f"tests-{answer['id']}",
            },
        )
        feedback.raise_for_status()
        print("credited", [c["decision_id"] for c in feedback.json()["credited"]])

        logged = client.get(f"/requests/{answer['id']}").json()
        for decision in logged["decisions"]:  # each reward: immediate checks, then yours
            rewards = [(r["source"], r["value"]) for r in decision["rewards"]]
            print(decision["stage"], decision["arm"], decision["probability"], rewards)
        return logged


if __name__ == "__main__":
    main(*sys.argv[1:])
