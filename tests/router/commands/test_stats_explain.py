"""``signalroute stats`` and ``signalroute explain`` read what a real service logged: a few
requests routed over real HTTP through the demo pool, then the commands run against the same
embedded Postgres."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from router.app import create_app
from router.background import serve_in_background
from router.cli import main
from router.settings import Settings
from store.database import Database
from store.migrations import reset_data

PROMPTS = (
    "Write a python function to identify non-prime numbers.",
    "Which of these is a mammal? (A) shark (B) dolphin (C) trout (D) eel",
    "2 + 2 = ?",
    "Write a function that reverses a string in python.",
)


@pytest.fixture(scope="module")
async def empty_store(session_database: Database) -> Database:
    """The session's store with every table emptied, once for this module."""
    async with session_database.connection() as conn:
        await reset_data(conn)
    return session_database


@pytest.fixture(scope="module")
def traffic(empty_store: Database, database_url: str, replay_app: FastAPI) -> list[dict[str, Any]]:
    """Four requests routed by a real service (one of them rated by its user); yields each
    request's stored record as ``GET /requests/{id}`` returns it."""
    settings = Settings(database_url=database_url, port=0, seed=3)
    stored: list[dict[str, Any]] = []
    with (
        serve_in_background(
            settings, app_factory=lambda s: create_app(s, replay_app=replay_app)
        ) as service,
        httpx.Client(base_url=service.base_url, timeout=60) as client,
    ):
        for prompt in PROMPTS:
            routed = client.post(
                "/route-and-run",
                json={"messages": [{"role": "user", "content": prompt}], "tenant": "acme"},
            )
            assert routed.status_code == 200, routed.text
            request_id = routed.json()["id"]
            if prompt == PROMPTS[0]:
                rated = client.post("/feedback", json={"request_id": request_id, "reward": 0.9})
                assert rated.status_code == 201, rated.text
            stored.append(client.get(f"/requests/{request_id}").json())
    return stored


@pytest.fixture(scope="module")
def environment(database_url: str) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SIGNALROUTE_DATABASE_URL", database_url)
        yield


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 0
    return capsys.readouterr().out


@pytest.mark.usefixtures("environment")
def test_stats_add_up_the_logged_traffic(
    traffic: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    report = json.loads(run(capsys, "stats", "--window", "1h", "--json"))
    totals = report["totals"]
    assert totals["requests"] == len(PROMPTS)
    assert totals["completed"] == sum(r["status"] == "completed" for r in traffic)
    assert totals["cost_usd"] == pytest.approx(sum(r["cost_usd"] or 0.0 for r in traffic))
    answered: dict[str, int] = {}
    for request in traffic:
        answered[request["model"]] = answered.get(request["model"], 0) + 1
    assert {m["model"]: m["answers"] for m in report["models"]} == answered

    decisions = [d for r in traffic for d in r["decisions"]]
    drawn: dict[tuple[str, str], int] = {}
    for d in decisions:
        drawn[(d["stage"], d["arm"])] = drawn.get((d["stage"], d["arm"]), 0) + 1
    assert {(a["stage"], a["arm"]): a["decisions"] for a in report["arms"]} == drawn
    pre = [a for a in report["arms"] if a["stage"] == "pre"]
    assert sum(a["share"] for a in pre) == pytest.approx(1.0)
    rated = next(d for d in traffic[0]["decisions"] if len(d["rewards"]) > 1)
    rated_row = next(
        a for a in report["arms"] if (a["stage"], a["arm"]) == (rated["stage"], rated["arm"])
    )
    assert rated_row["rewarded"] >= 1
    post = [d for d in decisions if d["stage"] == "post"]
    assert report["escalations"]["decisions"] == len(post)
    assert report["escalations"]["escalated"] == sum(d["arm"].startswith("escalate:") for d in post)

    text = run(capsys, "stats", "--window", "1h")
    assert f"requests: {len(PROMPTS)} ({totals['completed']} completed" in text
    assert "arms drawn by each stage" in text
    for model in answered:
        assert model in text

    assert (
        json.loads(run(capsys, "stats", "--tenant", "nobody", "--json"))["totals"]["requests"] == 0
    )


@pytest.mark.usefixtures("environment")
def test_explain_shows_a_requests_trace_as_tables(
    traffic: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    request = traffic[0]
    text = run(capsys, "explain", request["id"])
    lines = text.splitlines()
    assert lines[0] == f"request {request['id']}: completed, tenant acme"
    assert f"answered by {request['model']}" in lines[1]
    assert lines[2] == f"prompt: {PROMPTS[0]}"
    start = lines.index("decisions (probability: the propensity the arm was drawn with)")
    header = lines[start + 1].split()
    assert header[:4] == ["step", "stage", "arm", "probability"]
    for step, decision in enumerate(request["decisions"], start=1):
        row = lines[start + 2 + step].split()
        assert row[:3] == [str(step), decision["stage"], decision["arm"]]
        assert float(row[3]) == pytest.approx(decision["probability"], rel=1e-3)
    pmf_start = lines.index("PMF of each decision")
    first = request["decisions"][0]
    pmf_rows = lines[pmf_start + 3 : pmf_start + 3 + len(first["pmf"])]
    assert {row.split()[2] for row in pmf_rows} == set(first["pmf"])
    rewards = lines[lines.index("rewards") :]
    assert any(line.split()[2:3] == ["user"] for line in rewards)

    trace = json.loads(run(capsys, "explain", f"chatcmpl-{request['id']}", "--json"))
    assert [d["arm"] for d in trace["decisions"]] == [d["arm"] for d in request["decisions"]]
    assert trace["decisions"][0]["signals"]["query"]  # the query signals the policy saw
    with_signals = run(capsys, "explain", request["id"], "--signals")
    assert "\nsignals\n" in with_signals


@pytest.mark.usefixtures("environment")
def test_explain_an_unknown_request_is_one_error_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "00000000-0000-0000-0000-000000000000"]) == 2
    assert capsys.readouterr().err == (
        "signalroute: error: no request 00000000-0000-0000-0000-000000000000\n"
    )
