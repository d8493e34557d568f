"""Every stage of the lifecycle against the replay pool with injected faults.

The pool here has two arms: ``claude-v1`` misbehaves as each test says (a content fault or a
transport fault injected by the replay pool), ``gpt-4-1106-preview`` answers as recorded.
Exploration is uniform here (epsilon-greedy with epsilon 1), so each request starts on either
arm with probability 1/2: each test sends a few and checks those that started on the faulty
arm.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from learner.reward import RewardWeights, shape_reward
from router.tools.replay_pool.dataset import ReplayDataset, ReplayRecord
from tests.router.service.conftest import ServiceClient, ServiceFactory

UNIFORM: dict[str, Any] = {"exploration": "epsilon", "epsilon": 1.0}
FAULTY = "claude-v1"
GOOD = "gpt-4-1106-preview"

POOL = """
arms:
  - {name: claude-v1, base_url: "{self}/replay/v1", model: claude-v1,
     input_usd_per_mtok: 8, output_usd_per_mtok: 24, context_window: 100000}
  - {name: gpt-4-1106-preview, base_url: "{self}/replay/v1", model: gpt-4-1106-preview,
     input_usd_per_mtok: 10, output_usd_per_mtok: 30, context_window: 128000}
judge: {name: judge, base_url: "{self}/replay/v1", model: replay/judge}
escalation_targets: [gpt-4-1106-preview]
"""


@pytest.fixture
def pool_file(tmp_path: Path) -> Path:
    path = tmp_path / "pool.yaml"
    path.write_text(POOL)
    return path


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def mbpp_record(dataset: ReplayDataset, min_chars: int = 300) -> ReplayRecord:
    """An MBPP prompt both arms answer at length, gpt-4 with a code block that parses."""
    for record in dataset:
        if record.task != "mbpp":
            continue
        good = record.outcome(GOOD).response
        if (
            len(record.outcome(FAULTY).response) >= min_chars
            and "```python" in good
            and "```" in record.outcome(FAULTY).response
        ):
            block = good.split("```python", 1)[1].split("```", 1)[0]
            try:
                compile(block, "<answer>", "exec")
            except SyntaxError:
                continue
            return record
    raise AssertionError("no suitable MBPP record")


async def started_on_faulty(
    client: ServiceClient, body: dict[str, Any], tries: int = 10
) -> list[dict[str, Any]]:
    """Responses of the requests whose first decision drew the faulty arm (at least one)."""
    hits = []
    for _ in range(tries):
        response = await client.post("/route-and-run", json=body)
        assert response.status_code == 200, response.text
        result = response.json()
        if result["trace"]["decisions"][0]["arm"] == FAULTY:
            hits.append(result)
    assert hits, f"the uniform policy never drew the faulty arm: {result['trace']['decisions'][0]}"
    return hits


@pytest.mark.parametrize(
    ("fault", "detector", "extra"),
    [
        ("refusal", "refusal", {}),
        ("repeat", "repetition", {}),
        ("language", "language", {}),
        ("stall", "stall", {"stages": {"stall_ms": 300}}),
    ],
)
async def test_a_run_is_cut_by_each_detector_and_rerouted(
    service: ServiceFactory,
    pool_file: Path,
    replay_dataset: ReplayDataset,
    fault: str,
    detector: str,
    extra: dict[str, Any],
) -> None:
    record = mbpp_record(replay_dataset)
    replay = {"model_faults": {FAULTY: fault}, "stall_ms": 2000}
    body = {"messages": user(record.prompt), **extra}
    body.setdefault("stages", {}).update({"escalation": False, "components": False})
    async with service(**UNIFORM, pool_config=pool_file, replay=replay) as client:
        for result in await started_on_faulty(client, body):
            cut, rerouted = result["trace"]["decisions"][:2]
            assert cut["outcome"].startswith("cut: ")
            assert cut["details"]["detector"] == detector
            assert cut["reward"] == 0.0
            assert rerouted["stage"] == "in"
            assert rerouted["arm"] == GOOD
            assert rerouted["signals"]["cut"]["cut_by"] == detector
            assert FAULTY in rerouted["masked"]
            assert result["model"] == GOOD
            assert result["output"] == record.outcome(GOOD).response


async def test_json_format_divergence_is_cut_and_rerouted(
    service: ServiceFactory, pool_file: Path, replay_dataset: ReplayDataset
) -> None:
    record = mbpp_record(replay_dataset)
    # paced: the detectors see the text a read at a time, and an unpaced stream may arrive
    # in one read
    replay = {
        "model_faults": {FAULTY: "broken_json", GOOD: "as_json"},
        "stream_chunks_per_s": 200.0,
    }
    body = {
        "messages": user(record.prompt),
        "response_format": {"type": "json_object"},
        "stages": {"escalation": False, "components": False},
    }
    async with service(**UNIFORM, pool_config=pool_file, replay=replay) as client:
        for result in await started_on_faulty(client, body):
            cut = result["trace"]["decisions"][0]
            assert cut["details"]["detector"] == "format"
            assert cut["details"]["chars_before_cut"] < 40  # caught at once
            assert json.loads(result["output"]) == {"answer": record.outcome(GOOD).response}


async def test_a_stream_cut_after_the_holdback_shows_the_switch(
    service: ServiceFactory, pool_file: Path, replay_dataset: ReplayDataset
) -> None:
    record = mbpp_record(replay_dataset)
    replay = {"model_faults": {FAULTY: "language"}}
    body = {
        "messages": user(record.prompt),
        "stream": True,
        "stages": {"escalation": False, "components": False, "holdback_chars": 16},
    }
    async with service(**UNIFORM, pool_config=pool_file, replay=replay) as client:
        for _ in range(10):
            events: list[tuple[str, Any]] = []
            async with client.stream("POST", "/route-and-run", json=body) as response:
                assert response.status_code == 200
                kind = ""
                async for line in response.aiter_lines():
                    if line.startswith("event: "):
                        kind = line[len("event: ") :]
                    elif line.startswith("data: "):
                        events.append((kind, json.loads(line[len("data: ") :])))
            result = events[-1][1]
            if result["trace"]["decisions"][0]["arm"] == FAULTY:
                break
        else:
            raise AssertionError("the faulty arm was never drawn")
    kinds = [kind for kind, _ in events]
    switch_at = kinds.index("switch")
    before = "".join(d["text"] for k, d in events[:switch_at] if k == "delta")
    after = "".join(d["text"] for k, d in events[switch_at:] if k == "delta")
    assert before  # the client saw the faulty arm's first words, released after 16 chars
    assert record.outcome(FAULTY).response.startswith(before[:16])
    switch = events[switch_at][1]
    assert (switch["from_arm"], switch["to_arm"], switch["stage"]) == (FAULTY, GOOD, "in")
    assert "language" in switch["reason"]
    assert after == result["output"] == record.outcome(GOOD).response
    cut = result["trace"]["decisions"][0]
    assert cut["details"]["client_saw_text"] is True


async def test_a_run_cut_inside_the_holdback_is_never_seen(
    service: ServiceFactory, pool_file: Path, replay_dataset: ReplayDataset
) -> None:
    record = mbpp_record(replay_dataset)
    replay = {"model_faults": {FAULTY: "refusal"}}
    body = {
        "messages": user(record.prompt),
        "stream": True,
        "stages": {"escalation": False, "components": False, "holdback_chars": 200},
    }
    async with service(**UNIFORM, pool_config=pool_file, replay=replay) as client:
        for _ in range(10):
            async with client.stream("POST", "/route-and-run", json=body) as response:
                text = await response.aread()
            events = [e for e in text.decode().split("\n\n") if e.strip()]
            result = json.loads(events[-1].split("data: ", 1)[1])
            if result["trace"]["decisions"][0]["arm"] == FAULTY:
                break
        else:
            raise AssertionError("the faulty arm was never drawn")
    assert not any(e.startswith("event: switch") for e in events)
    streamed = "".join(
        json.loads(e.split("data: ", 1)[1])["text"] for e in events if e.startswith("event: delta")
    )
    assert "sorry" not in streamed.lower()
    assert streamed == result["output"]
    assert result["trace"]["decisions"][0]["details"]["client_saw_text"] is False


async def test_cost_cap_cuts_a_run_that_runs_long(
    service: ServiceFactory, tmp_path: Path, replay_dataset: ReplayDataset
) -> None:
    # The longest recorded claude-v1 answer (2,308 characters, ~577 tokens) runs past the
    # 512 output tokens the up-front cost estimate assumes; priced at $40/M output tokens it
    # passes a $0.021 cap (which the estimate of $0.0205 met) after ~2,100 characters. The
    # detectors see the text a read at a time: the cut comes at the end of the read that passed
    # the cap (here the stream is not paced, and a read may hold the rest of the answer).
    record = max(
        (r for r in replay_dataset if r.task == "mbpp"),
        key=lambda r: len(r.outcome(FAULTY).response),
    )
    assert len(record.outcome(GOOD).response) < 2000
    pool_file = tmp_path / "pool.yaml"
    pool_file.write_text(POOL.replace("output_usd_per_mtok: 24", "output_usd_per_mtok: 40"))
    body = {
        "messages": user(record.prompt),
        "constraints": {"max_cost_usd": 0.021},
        "stages": {"escalation": False, "components": False},
    }
    async with service(**UNIFORM, pool_config=pool_file) as client:
        for result in await started_on_faulty(client, body):
            cut = result["trace"]["decisions"][0]
            assert cut["details"]["detector"] == "cost_cap"
            assert "max_cost_usd" in cut["outcome"]
            assert 2000 < cut["details"]["chars_before_cut"] <= 2308
            assert result["model"] == GOOD


async def test_a_failed_validation_is_escalated_with_the_failed_output(
    service: ServiceFactory, pool_file: Path, replay_dataset: ReplayDataset
) -> None:
    record = mbpp_record(replay_dataset)
    replay = {"model_faults": {FAULTY: "broken_code"}}
    body = {
        "messages": user(record.prompt),
        "stages": {"components": False, "judge": "never"},
    }
    async with service(**UNIFORM, pool_config=pool_file, replay=replay) as client:
        escalated = []
        for result in await started_on_faulty(client, body, tries=16):
            post = result["trace"]["decisions"][-1]
            assert post["stage"] == "post"
            assert set(post["pmf"]) == {"accept", f"escalate:{GOOD}"}
            assert post["signals"]["output"]["failed_python_syntax"] == 1.0
            if post["arm"] == f"escalate:{GOOD}":
                escalated.append((result, post))
    assert escalated, "the cold escalation policy never escalated"
    result, post = escalated[0]
    prompt = post["details"]["escalation_prompt"]
    assert record.prompt in prompt
    assert "python_syntax: code block 1 does not parse" in prompt
    assert "def broken(:" in prompt  # the failed output travels with it
    assert post["outcome"] == "escalated; answer replaced"
    assert result["model"] == GOOD
    assert result["output"] == record.outcome(GOOD).response
    assert post["reward"] > 0


async def test_a_cold_escalation_policy_starts_from_its_rule(
    service: ServiceFactory, pool_file: Path, replay_dataset: ReplayDataset
) -> None:
    """From the first request on, a new service accepts an answer that passed its checks and
    escalates one that failed them (anchored to that rule, it explores 10% of the time),
    whatever the untrained policy's PMF (uniform here)."""
    record = mbpp_record(replay_dataset)
    body = {"messages": user(record.prompt), "stages": {"components": False, "judge": "never"}}
    replay = {"model_faults": {FAULTY: "broken_code"}}
    async with service(**UNIFORM, pool_config=pool_file, replay=replay) as client:
        for result in await started_on_faulty(client, body, tries=12):
            post = result["trace"]["decisions"][-1]
            assert post["signals"]["output"]["validators_failed"] >= 1
            assert post["pmf"][f"escalate:{GOOD}"] == pytest.approx(0.95)
    async with service(**UNIFORM, anchor=False, pool_config=pool_file, replay=replay) as client:
        for result in await started_on_faulty(client, body, tries=12):
            post = result["trace"]["decisions"][-1]
            assert post["pmf"][f"escalate:{GOOD}"] == pytest.approx(0.5)  # the policy alone
    passed = next(
        r
        for r in replay_dataset
        if r.task == "mbpp" and "```python" in r.outcome(FAULTY).response and _parses(r)
    )
    body = {"messages": user(passed.prompt), "stages": {"components": False, "judge": "never"}}
    async with service(**UNIFORM, pool_config=pool_file) as client:
        for result in await started_on_faulty(client, body, tries=12):
            post = result["trace"]["decisions"][-1]
            assert post["signals"]["output"]["validators_failed"] == 0
            assert post["signals"]["output"]["validated"] == 1.0
            assert post["pmf"]["accept"] == pytest.approx(0.95)


async def test_request_credit_rewards_the_first_choice_for_what_it_led_to(
    service: ServiceFactory, pool_file: Path, replay_dataset: ReplayDataset
) -> None:
    """With ``pre_credit: request`` the pre-generation decision's reward is the delivered
    answer's quality against the whole request's cost, escalation included; by default it is
    its own answer's (broken code: 0 quality)."""
    record = mbpp_record(replay_dataset)
    replay = {"model_faults": {FAULTY: "broken_code"}}
    body = {
        "messages": user(record.prompt),
        "stages": {"components": False, "judge": "never"},
        "objective": {"lambda_cost": 0.3, "lambda_latency": 0.0},
    }
    weights = RewardWeights(lambda_cost=0.3, lambda_latency=0.0, cost_ref_usd=0.01)
    for credit in ("request", "answer"):
        overrides = {**UNIFORM, "pre_credit": credit}
        async with service(**overrides, pool_config=pool_file, replay=replay) as client:
            escalated = [
                r for r in await started_on_faulty(client, body, tries=12) if r["model"] == GOOD
            ]
        assert escalated, "no request started on the faulty arm was escalated"
        for result in escalated:
            pre = result["trace"]["decisions"][0]
            assert pre["details"]["credit"] == credit
            expected = (
                shape_reward(1.0, result["cost_usd"], 0.0, weights)
                if credit == "request"
                else shape_reward(0.0, pre["cost_usd"], 0.0, weights)
            )
            assert pre["reward"] == pytest.approx(expected)


def _parses(record: ReplayRecord) -> bool:
    block = record.outcome(FAULTY).response.split("```python", 1)[1].split("```", 1)[0]
    try:
        compile(block, "<answer>", "exec")
    except SyntaxError:
        return False
    return True


async def test_a_two_component_answer_is_assembled_from_two_arms(
    service: ServiceFactory, pool_file: Path, replay_dataset: ReplayDataset
) -> None:
    record = mbpp_record(replay_dataset)
    replay = {"model_faults": {FAULTY: "broken_code"}}
    body = {"messages": user(record.prompt), "stages": {"escalation": False, "judge": "never"}}
    async with service(**UNIFORM, pool_config=pool_file, replay=replay) as client:
        result = (await started_on_faulty(client, body))[0]
    decisions = result["trace"]["decisions"]
    repair = next(d for d in decisions if d["stage"] == "component")
    assert repair["arm"] == GOOD
    assert repair["outcome"] == "replaced"
    assert repair["details"]["kind"] == "code"
    components = result["trace"]["components"]
    arms_by_kind = {(c["kind"], c["arm"]) for c in components}
    assert ("code", GOOD) in arms_by_kind
    assert ("prose", FAULTY) in arms_by_kind
    assert "def broken(:" not in result["output"]
    good_block = record.outcome(GOOD).response.split("```python", 1)[1].split("```", 1)[0]
    assert good_block.strip() in result["output"]
    assert result["cost_usd"] == pytest.approx(sum(d["cost_usd"] or 0 for d in decisions))


CHAIN_POOL = """
arms:
  - {name: claude-v1, base_url: "{self}/replay/v1", model: claude-v1,
     input_usd_per_mtok: 8, output_usd_per_mtok: 24, context_window: 100000}
  - {name: claude-v2, base_url: "{self}/replay/v1", model: claude-v2,
     input_usd_per_mtok: 8, output_usd_per_mtok: 24, context_window: 100000}
  - {name: gpt-4-1106-preview, base_url: "{self}/replay/v1", model: gpt-4-1106-preview,
     input_usd_per_mtok: 10, output_usd_per_mtok: 30, context_window: 128000}
judge: {name: judge, base_url: "{self}/replay/v1", model: replay/judge}
escalation_targets: [gpt-4-1106-preview, claude-v1, claude-v2]
"""


async def test_an_escalated_answer_that_fails_again_is_escalated_again(
    service: ServiceFactory, tmp_path: Path, replay_dataset: ReplayDataset
) -> None:
    """Two claude arms write code that does not parse; with ``max_escalations: 2`` a chain
    claude -> claude -> gpt-4 can happen, each step to an arm not tried yet, each escalated
    answer checked again. Without the option, one step is the most."""
    pool_file = tmp_path / "pool.yaml"
    pool_file.write_text(CHAIN_POOL)
    record = mbpp_record(replay_dataset)
    replay = {"model_faults": {"claude-v1": "broken_code", "claude-v2": "broken_code"}}
    stages = {"components": False, "judge": "never"}
    body = {"messages": user(record.prompt), "stages": {**stages, "max_escalations": 2}}
    async with service(**UNIFORM, pool_config=pool_file, replay=replay) as client:
        chain = None
        for _ in range(150):  # a full chain is drawn with probability 1/9 per request
            response = await client.post("/route-and-run", json=body)
            assert response.status_code == 200, response.text
            result = response.json()
            posts = [d for d in result["trace"]["decisions"] if d["stage"] == "post"]
            answered = [result["trace"]["decisions"][0]["arm"]]
            # gpt-4, the strongest target, is the top of the ladder: its answer is final
            assert (not posts) if answered == [GOOD] else 1 <= len(posts) <= 2
            for post in posts:  # never back to an arm that answered already
                assert not {f"escalate:{arm}" for arm in answered} & set(post["pmf"])
                if post["arm"] != "accept":
                    answered.append(post["arm"].removeprefix("escalate:"))
            if len(posts) == 2 and posts[1]["arm"] == f"escalate:{GOOD}":
                chain = (result, posts)
                break
        assert chain is not None, "no request was escalated twice"
        result, (first, second) = chain
        assert first["outcome"] == "escalated; answer replaced"
        assert first["details"]["escalated_assessment"]["quality"] == 0.0  # broken again
        assert set(second["pmf"]) == {"accept", f"escalate:{GOOD}"}
        assert "def broken(:" in second["details"]["escalation_prompt"]
        assert second["outcome"] == "escalated; answer replaced"
        assert result["model"] == GOOD
        assert result["output"] == record.outcome(GOOD).response
        assert result["cost_usd"] == pytest.approx(
            sum(d["cost_usd"] or 0.0 for d in result["trace"]["decisions"])
        )

        single = {"messages": user(record.prompt), "stages": stages}
        for _ in range(20):
            response = await client.post("/route-and-run", json=single)
            decisions = response.json()["trace"]["decisions"]
            posts = [d for d in decisions if d["stage"] == "post"]
            assert len(posts) == (0 if decisions[0]["arm"] == GOOD else 1)  # the default: one step

        # The ladder is on by default and a request may turn it off; the log keeps which.
        ladders = {}
        for ladder in (None, False):
            options = stages if ladder is None else {**stages, "escalation_ladder": ladder}
            body = {"messages": user(record.prompt), "stages": options}
            response = await client.post("/route-and-run", json=body)
            logged = (await client.get(f"/requests/{response.json()['id']}")).json()
            ladders[ladder] = logged["params"]["stages"]["escalation_ladder"]
        assert ladders == {None: True, False: False}

        # With escalation_context: reasons, the next arm is told why, not sent the answer.
        contexts = set()
        options = {**stages, "escalation_context": "reasons"}
        for _ in range(40):
            body = {"messages": user(record.prompt), "stages": options}
            response = await client.post("/route-and-run", json=body)
            escalated = [
                d
                for d in response.json()["trace"]["decisions"]
                if d["stage"] == "post" and d["arm"] != "accept"
            ]
            answering = response.json()["trace"]["decisions"][0]["arm"]
            for post in escalated:
                prompt = post["details"]["escalation_prompt"]
                assert record.prompt in prompt
                if answering in replay["model_faults"]:  # a broken answer: told why
                    assert "does not parse" in prompt
                assert "def broken(:" not in prompt
                assert "rejected_answer" not in prompt
                answering = post["arm"].removeprefix("escalate:")
            if escalated:
                logged = (await client.get(f"/requests/{response.json()['id']}")).json()
                contexts.add(logged["params"]["stages"]["escalation_context"])
        assert contexts == {"reasons"}, "no request was escalated"
