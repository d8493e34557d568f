"""Decide only: ask the router which arm should answer (`POST /route`), run that model with
your own client, and send the outcome back (`POST /feedback`): the router logs the decision
with its probability and its pre-generation policy learns from your reward.

Run it against a running service: `python decide_only.py http://127.0.0.1:8000`.
"""

import sys
from typing import Any

import httpx
from openai import OpenAI

MESSAGES = [{"role": "user", "content": "Write a SQL query that lists the ten most recent orders."}]


def passes_my_check(answer: str) -> bool:
    """Stands for your own check of the answer: a parser, a test, a user's thumbs."""
    return "SELECT" in answer.upper()


def pre_updates(router: httpx.Client) -> int:
    """How many rewards the pre-generation policy has learned."""
    policies = router.get("/policies").json()["policies"]
    return next(p["updates"] for p in policies if p["stage"] == "pre")


def main(base_url: str = "http://127.0.0.1:8000", api_key: str | None = None) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
    with httpx.Client(base_url=base_url, headers=headers, timeout=60) as router:
        before = pre_updates(router)

        # 1. Which arm? The router logs the request and its decision; no model is called.
        choice = router.post("/route", json={"messages": MESSAGES, "hints": {"task": "sql"}})
        choice.raise_for_status()
        decision = choice.json()
        print("route to", decision["arm"], "with probability", round(decision["probability"], 3))

        # 2. Run the chosen model with your own client, keys and retries (here the arm's
        #    OpenAI-compatible endpoint, as the demo pool serves it).
        llm = OpenAI(base_url=decision["base_url"], api_key="your provider key")
        answer = llm.chat.completions.create(model=decision["model"], messages=MESSAGES)
        text = answer.choices[0].message.content or ""

        # 3. Send the outcome back, once (the idempotency key makes a retry a no-op).
        reward = 1.0 if passes_my_check(text) else 0.0
        feedback = router.post(
            "/feedback",
            json={
                "decision_id": decision["decision_id"],
                "reward": reward,
                "source": "sql-check",
                "idempotency_key": f"sql-check-{decision['decision_id']}",
            },
        )
        feedback.raise_for_status()
        print(
            "reward", reward, "learned; pre-generation updates:", before, "->", pre_updates(router)
        )
        return {
            "decision": decision,
            "reward": reward,
            "before": before,
            "after": pre_updates(router),
        }


if __name__ == "__main__":
    main(*sys.argv[1:])
