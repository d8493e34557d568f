"""The router service end to end: HTTP in, embedded Postgres and replay pool behind it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from router.api.route import route_request
from router.api.schemas import RouteAndRunBody
from router.routing import RouteResult
from router.tools.replay_pool.dataset import ReplayDataset
from store import rewards
from store.database import Database
from tests.router.service.conftest import ServiceFactory

GPT4 = "gpt-4-1106-preview"
PRE_ONLY = {"escalation": False, "components": False, "judge": "never"}
"""Stages off: these tests look at the pre-generation decision alone."""


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


async def count(database: Database, table: str) -> int:
    async with database.connection() as conn:
        cursor = await conn.execute(f"SELECT count(*) FROM {table}")  # test-only, fixed names
        row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def test_health_and_readiness(service: ServiceFactory) -> None:
    async with service() as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {
            "status": "ready",
            "store": "ok",
            "arms": 11,
            "serving_arms": 11,
            "unavailable_arms": {},
        }
        models = (await client.get("/v1/models")).json()
        ids = [m["id"] for m in models["data"]]
        profiles = ["auto", "cheap", "quality", "responsive"]
        assert ids[:4] == [f"signalroute/{name}" for name in profiles]
        assert len(ids) == 4 + 11


async def test_chat_completion_to_a_named_arm_returns_the_recorded_answer(
    service: ServiceFactory, replay_dataset: ReplayDataset, database: Database
) -> None:
    record = next(r for r in replay_dataset if r.task == "mbpp" and r.split == "test")
    expected = record.outcome(GPT4)
    async with service() as client:
        response = await client.post(
            "/v1/chat/completions", json={"model": GPT4, "messages": user(record.prompt)}
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["choices"][0]["message"]["content"] == expected.response
    assert body["usage"]["cost_usd"] == pytest.approx(expected.cost_usd)
    assert response.headers["x-signalroute-arm"] == GPT4
    assert await count(database, "requests") == 1


async def test_route_and_run_logs_decision_and_reward(
    service: ServiceFactory, replay_dataset: ReplayDataset
) -> None:
    record = next(r for r in replay_dataset if r.task == "winogrande")
    async with service() as client:
        response = await client.post(
            "/route-and-run", json={"messages": user(record.prompt), "stages": PRE_ONLY}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        [decision] = body["trace"]["decisions"]
        assert body["model"] == decision["arm"]
        assert body["output"] == record.outcome(body["model"]).response
        assert body["cost_usd"] == pytest.approx(record.outcome(body["model"]).cost_usd)
        assert 0 < decision["probability"] <= 1
        assert sum(decision["pmf"].values()) == pytest.approx(1.0)
        assert decision["pmf"][decision["arm"]] == pytest.approx(decision["probability"])
        assert decision["signals"]["query"]["language"] == "en"
        assert 0 <= decision["reward"] <= 1
        timings = body["trace"]["timings"]
        parts = ("embed_ms", "history_ms", "context_ms", "draw_ms")
        assert all(timings[part] > 0 for part in (*parts, "query_signals_ms"))
        # Measured one after another inside the decision; the query signals are computed
        # while the look-up is under way, so they are inside its wall time.
        assert sum(timings[part] for part in parts) < timings["decision_ms"]
        assert timings["query_signals_ms"] < timings["history_ms"]

        stored = (await client.get(f"/requests/{body['id']}")).json()
        assert stored["status"] == "completed"
        assert stored["model"] == body["model"]
        [logged] = stored["decisions"]
        assert logged["probability"] == pytest.approx(decision["probability"])
        assert [r["source"] for r in logged["rewards"]] == ["immediate"]
        assert logged["cost_usd"] == pytest.approx(decision["cost_usd"])
        assert logged["latency_ms"] == pytest.approx(decision["latency_ms"])
        # The rest of the trace is kept with the request, as the response showed it.
        assert stored["trace"]["components"] == body["trace"]["components"]
        assert stored["trace"]["assessment"] == body["trace"]["assessment"]
        assert stored["trace"]["timings"] == pytest.approx(timings)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"messages": []}, "messages: Value error, must hold at least one message"),
        ({"messages": [{"role": "user", "content": ""}]}, "non-empty content"),
        ({"messages": [{"role": "wizard", "content": "hi"}]}, "messages.0.role"),
        ({"messages": user("hi"), "colour": "red"}, "colour: Extra inputs are not permitted"),
        ({"messages": user("hi"), "constraints": {"max_cost_usd": -1}}, "max_cost_usd"),
        ({"messages": user("hi"), "response_format": {"type": "yaml"}}, "response_format"),
        ({"messages": "hi"}, "messages"),
        ({"messages": user("hi"), "hints": {"Task": "sql"}}, "hint key 'Task' must be"),
        ({"messages": user("hi"), "hints": {"task": ""}}, "hint 'task' must be a string of 1"),
        ({"messages": user("hi"), "hints": {"task": "a b"}}, "got 'a b'"),
        ({"messages": user("hi"), "hints": {"task": "a:b"}}, "got 'a:b'"),
        ({"messages": user("hi"), "hints": {"task": "x" * 65}}, "hint 'task' must be"),
        ({"messages": user("hi"), "hints": {"k" * 33: "v"}}, "at most 32 characters"),
        ({"messages": user("hi"), "hints": {f"k{i}": "v" for i in range(9)}}, "at most 8 hints"),
        ({"messages": user("hi"), "hints": {"task": 3}}, "hints.task"),
    ],
)
async def test_bad_route_requests_are_400_and_write_nothing(
    service: ServiceFactory, database: Database, payload: dict[str, Any], message: str
) -> None:
    async with service() as client:
        response = await client.post("/route-and-run", json=payload)
    assert response.status_code == 400
    assert message in response.json()["error"]["message"]
    assert await count(database, "requests") == 0


async def test_hints_reach_the_context_and_the_log(service: ServiceFactory) -> None:
    hints = {"task": "winogrande", "area": "support"}
    async with service() as client:
        response = await client.post(
            "/route-and-run",
            json={"messages": user("Pick the right option."), "stages": PRE_ONLY, "hints": hints},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        [decision] = body["trace"]["decisions"]
        query = decision["signals"]["query"]
        assert (query["hint_task"], query["hint_area"]) == ("winogrande", "support")
        stored = (await client.get(f"/requests/{body['id']}")).json()
        assert stored["params"]["hints"] == hints
        [logged] = stored["decisions"]
        assert logged["context"]["shared"]["Q"]["hint_task"] == "winogrande"


async def test_constraints_no_arm_satisfies_are_422_and_write_nothing(
    service: ServiceFactory, database: Database
) -> None:
    async with service() as client:
        response = await client.post(
            "/route-and-run",
            json={"messages": user("hello"), "constraints": {"max_cost_usd": 1e-9}},
        )
        assert response.status_code == 422
        error = response.json()["error"]
        assert error["code"] == "no_eligible_arm"
        assert "max_cost_usd" in error["message"]
        missing = await client.post(
            "/route-and-run",
            json={"messages": user("hello"), "constraints": {"capabilities": ["vision"]}},
        )
        assert missing.status_code == 422
        assert "lacks capability vision" in missing.json()["error"]["message"]
    assert await count(database, "requests") == 0


async def test_constraints_mask_arms_before_the_draw(service: ServiceFactory) -> None:
    async with service() as client:
        response = await client.post(
            "/route-and-run",
            json={"messages": user("Write a function"), "constraints": {"capabilities": ["code"]}},
        )
    decision = response.json()["trace"]["decisions"][0]
    assert set(decision["pmf"]) == {
        "gpt-4-1106-preview",
        "gpt-3.5-turbo-1106",
        "claude-v2",
        "meta/code-llama-instruct-34b-chat",
        "mistralai/mixtral-8x7b-chat",
    }
    assert "lacks capability code" in decision["masked"]["claude-v1"]


async def test_feedback_is_recorded_once_and_validated(
    service: ServiceFactory, database: Database
) -> None:
    async with service() as client:
        routed = (
            await client.post("/route-and-run", json={"messages": user("hi"), "stages": PRE_ONLY})
        ).json()
        body = {"request_id": routed["id"], "reward": 0.9, "idempotency_key": "thumbs-1"}
        first = await client.post("/feedback", json=body)
        again = await client.post("/feedback", json=body)
        assert first.status_code == 201, first.text
        assert first.json()["duplicate"] is False
        assert again.status_code == 200
        assert again.json()["duplicate"] is True
        assert again.json()["reward_id"] == first.json()["reward_id"]
        conflict = await client.post("/feedback", json={**body, "reward": 0.1})
        assert conflict.status_code == 409
        too_big = await client.post("/feedback", json={"request_id": routed["id"], "reward": 1.5})
        assert too_big.status_code == 400
        assert "reward" in too_big.json()["error"]["message"]
        unknown = await client.post(
            "/feedback",
            json={"decision_id": "00000000-0000-0000-0000-000000000000", "reward": 0.5},
        )
        assert unknown.status_code == 404
        neither = await client.post("/feedback", json={"reward": 0.5})
        assert neither.status_code == 400
        stored = (await client.get(f"/requests/{routed['id']}")).json()
    sources = [r["source"] for r in stored["decisions"][-1]["rewards"]]
    assert sorted(sources) == ["immediate", "user"]
    assert await count(database, "rewards") == 2


async def test_unknown_request_is_404(service: ServiceFactory) -> None:
    async with service() as client:
        assert (await client.get("/requests/not-a-uuid")).status_code == 404
        absent = await client.get("/requests/00000000-0000-0000-0000-000000000000")
        assert absent.status_code == 404


async def test_streaming_route_and_run(
    service: ServiceFactory, replay_dataset: ReplayDataset
) -> None:
    record = next(r for r in replay_dataset if r.task == "mbpp")
    async with (
        service() as client,
        client.stream(
            "POST", "/route-and-run", json={"messages": user(record.prompt), "stream": True}
        ) as response,
    ):
        assert response.status_code == 200
        text = ""
        result: dict[str, Any] | None = None
        event = ""
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                event = line[len("event: ") :]
            elif line.startswith("data: "):
                data = json.loads(line[len("data: ") :])
                if event == "switch":
                    text = ""  # what follows a switch replaces what came before
                elif event == "delta":
                    text += data["text"]
                elif event == "result":
                    result = data
    assert result is not None
    assert text == result["output"]
    assert result["output"] == record.outcome(result["model"]).response


async def test_failing_arms_are_rerouted_and_exhausted_requests_logged(
    service: ServiceFactory,
) -> None:
    async with service(replay={"error_rate": 0.5, "seed": 3}, max_attempts=3) as client:
        responses = [
            await client.post(
                "/route-and-run", json={"messages": user(f"question {i}"), "stages": PRE_ONLY}
            )
            for i in range(16)
        ]
        assert {r.status_code for r in responses} <= {200, 502}
        traces = [r.json()["trace"]["decisions"] for r in responses]
        rerouted = [t for t in traces if len(t) > 1]
        assert rerouted, "with a 50% error rate some request must have failed over"
        for trace in rerouted:
            assert trace[0]["outcome"].startswith("error")
            assert trace[0]["reward"] == 0.0
            assert trace[0]["arm"] in trace[1]["masked"]
        for response, trace in zip(responses, traces, strict=True):
            stored = (await client.get(f"/requests/{response.json()['id']}")).json()
            assert len(stored["decisions"]) == len(trace)
            if response.status_code == 200:
                assert stored["status"] == "completed"
                assert trace[-1]["outcome"] == "ok"
            else:
                assert stored["status"] == "failed"
                assert len(trace) == 3
                assert all(d["outcome"].startswith("error") for d in trace)
                assert response.json()["error"]["code"] == "provider_server_error"


async def test_the_request_that_ran_a_route_closes_it(
    service: ServiceFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once a non-streaming answer is sent, its run is closed by the request's own task on
    the loop (its policies unpinned, its journal settled), not left to the garbage
    collector's finalizer."""
    seen: dict[str, object] = {}
    async with service() as client:
        router = client.runtime.router
        original = router.run

        async def watched(request: Any) -> AsyncIterator[Any]:
            seen["runner"] = asyncio.current_task()
            try:
                async for event in original(request):
                    yield event
            finally:
                seen["closer"] = asyncio.current_task()

        monkeypatch.setattr(router, "run", watched)
        answered = await client.post(
            "/route-and-run", json={"messages": user("What is 2 + 2?"), "stages": PRE_ONLY}
        )
        assert answered.status_code == 200
        for _ in range(100):  # the close runs once the answer is out
            if "closer" in seen:
                break
            await asyncio.sleep(0.01)
    assert seen["closer"] is seen["runner"]


async def test_the_generations_reward_is_learned_and_journaled_once_the_answer_is_out(
    service: ServiceFactory, database: Database
) -> None:
    """The answer comes first; closing its run learns the generation's reward and hands the
    journal over, the reward journaled with the update it was learned as."""
    async with service() as client:
        runtime = client.runtime
        assert runtime.writer is not None
        body = RouteAndRunBody.model_validate(
            {"messages": user("What is 7 * 6?"), "stages": PRE_ONLY}
        )
        request = route_request(body, runtime, "default")
        before = runtime.policies.serving("pre", "default").policy.updates
        run = runtime.router.run(request)
        result = None
        async for event in run:
            if isinstance(event, RouteResult):
                result = event
                break
        assert result is not None
        [decision] = result.decisions
        assert decision.reward is not None  # the answer carries its reward...
        assert (
            runtime.policies.serving("pre", "default").policy.updates == before
        )  # ...not learned yet
        waiting = asyncio.ensure_future(runtime.writer.wait(decision_id=decision.decision_id))
        await asyncio.sleep(0.05)
        assert not waiting.done()  # a reader of its rows waits for the hand-off
        await run.aclose()
        assert runtime.policies.serving("pre", "default").policy.updates == before + 1
        await asyncio.wait_for(waiting, 10)
    async with database.connection() as conn:
        [reward] = await rewards.list_rewards_for_decision(conn, decision.decision_id)
    assert reward.value == pytest.approx(decision.reward)
    assert reward.policy_update == before + 1


async def test_a_run_that_fails_after_its_reward_keeps_the_reward(
    service: ServiceFactory, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that ends between its generation's reward and its answer: the reward is
    learned and journaled with the abandoned request, not lost with the answer."""
    async with service() as client:
        runtime = client.runtime
        router = runtime.router
        before = runtime.policies.serving("pre", "default").policy.updates

        def broken(*_: Any) -> None:
            raise RuntimeError("after the reward, before the answer")

        monkeypatch.setattr(router, "_served", broken)
        body = RouteAndRunBody.model_validate(
            {"messages": user("What is 9 - 4?"), "stages": PRE_ONLY}
        )
        request = route_request(body, runtime, "default")
        with pytest.raises(RuntimeError, match="before the answer"):
            async for _ in router.run(request):
                pass
        assert runtime.policies.serving("pre", "default").policy.updates == before + 1
        assert runtime.writer is not None
        await runtime.writer.drain()
    async with database.connection() as conn:
        cursor = await conn.execute(
            "SELECT r.status, count(w.id) FROM requests r JOIN decisions d ON d.request_id = r.id"
            " LEFT JOIN rewards w ON w.decision_id = d.id GROUP BY r.status"
        )
        assert await cursor.fetchall() == [("failed", 1)]


async def test_a_run_cancelled_while_it_learns_hands_its_journal_over_once(
    service: ServiceFactory, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The task reading a stream is cancelled while the answer's learning is under way: the
    learning finishes, the journal goes over once, as completed, and nothing is abandoned."""
    async with service() as client:
        runtime = client.runtime
        router = runtime.router
        decider = router._decider
        settle = decider.settle
        learning, resume = asyncio.Event(), asyncio.Event()

        async def slow_settle(*args: Any, **kwargs: Any) -> None:
            learning.set()
            await resume.wait()
            await settle(*args, **kwargs)

        monkeypatch.setattr(decider, "settle", slow_settle)
        submitted: list[str] = []
        writer = runtime.writer
        assert writer is not None
        submit = writer.submit

        def counted(journal: Any, outcome: Any, embedding: Any = None) -> None:
            submitted.append(type(outcome).__name__)
            submit(journal, outcome, embedding)

        monkeypatch.setattr(writer, "submit", counted)
        body = RouteAndRunBody.model_validate(
            {"messages": user("What is 3 * 5?"), "stages": PRE_ONLY, "stream": True}
        )
        run = router.run(route_request(body, runtime, "default"))

        async def read() -> None:
            async for _ in run:
                pass

        reader = asyncio.ensure_future(read())
        await asyncio.wait_for(learning.wait(), 10)  # the result is out, the learning waits
        reader.cancel()
        await asyncio.sleep(0.05)  # the cancellation reaches the reader: it ends the run
        assert submitted == []  # nothing abandoned while the learning is under way
        resume.set()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(reader, 10)
        await writer.drain()
    assert submitted == ["Completed"]
    async with database.connection() as conn:
        cursor = await conn.execute(
            "SELECT r.status, count(w.id) FROM requests r JOIN decisions d ON d.request_id = r.id"
            " LEFT JOIN rewards w ON w.decision_id = d.id GROUP BY r.status"
        )
        assert await cursor.fetchall() == [("completed", 1)]
