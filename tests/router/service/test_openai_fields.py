"""Every row of the compatibility table, checked against a running service: forwarded
fields reach the arm as sent (routed and to a named arm), fields the router uses are
accepted and logged, refused fields are a 400 naming the field. The rows come from
``router.api.openai_fields.FIELDS``, as does the documentation's table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from router.api.openai_fields import FIELDS, compatibility_table
from tests.router.conftest import REPO_ROOT
from tests.router.fake_openai import FakeOpenAI
from tests.router.service.conftest import ServiceFactory

ALL = "[json, tools, reasoning, vision]"
POOL = f"""
arms:
  - {{name: fake-a, base_url: "{{self}}/replay/v1", model: fake-a, capabilities: {ALL}}}
  - {{name: fake-b, base_url: "{{self}}/replay/v1", model: fake-b, capabilities: {ALL}}}
stages: {{escalation: false, components: false, judge: never}}
"""
TOOLS = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
NO_CALL = {"tools": TOOLS, "tool_choice": "none"}

ACCEPTED: dict[str, tuple[Any, dict[str, Any]]] = {
    # field: (a value the router takes, other fields the request needs with it)
    "model": ("signalroute/auto", {}),
    "messages": ([{"role": "user", "content": "hello"}], {}),
    "stream": (False, {}),
    "stream_options": ({"include_usage": True}, {}),
    "max_tokens": (50, {}),
    "max_completion_tokens": (50, {}),
    "temperature": (0.3, {}),
    "top_p": (0.9, {}),
    "stop": (["\n\n"], {}),
    "seed": (7, {}),
    "presence_penalty": (0.5, {}),
    "frequency_penalty": (-0.5, {}),
    "logit_bias": ({"50256": -100.0}, {}),
    "n": (2, {}),
    "logprobs": (False, {}),
    "response_format": ({"type": "json_object"}, {}),
    "tools": (TOOLS, {"tool_choice": "none"}),
    "tool_choice": ("none", {"tools": TOOLS}),
    "parallel_tool_calls": (False, NO_CALL),
    "reasoning_effort": ("low", {}),
    "user": ("alice", {}),
    "metadata": ({"team": "search"}, {}),
    "prompt_cache_key": ("k-1", {}),
    "safety_identifier": ("u-1", {}),
    "store": (False, {}),
    "modalities": (["text"], {}),
    "constraints": ({"max_cost_usd": 1.0}, {}),
    "session": ("s-1", {}),
    "hints": ({"task": "sql"}, {}),
    "tenant": ("acme", {}),
}
REFUSED: dict[str, tuple[Any, dict[str, Any], bool]] = {
    # field: (a value refused, other fields sent with it, routed)
    "stream_options": ({"include_obfuscation": False}, {"stream": True}, True),
    "max_completion_tokens": (50, {"max_tokens": 50}, True),
    "stop": (["a", "b", "c", "d", "e"], {}, True),
    "presence_penalty": (3, {}, True),
    "frequency_penalty": (-3, {}, True),
    "logit_bias": ({"50256": -100.0}, {}, True),
    "n": (2, {"stream": True}, False),
    "logprobs": (True, {}, False),
    "top_logprobs": (2, {}, False),
    "tool_choice": ("required", {}, True),
    "metadata": ({"team": 1}, {}, True),
    "store": (True, {}, True),
    "modalities": (["text", "audio"], {}, True),
    "audio": ({"voice": "alloy", "format": "wav"}, {}, True),
    "prediction": ({"type": "content", "content": "x"}, {}, True),
    "service_tier": ("flex", {}, True),
    "web_search_options": ({}, {}, True),
    "verbosity": ("low", {}, True),
    "functions": ([{"name": "f"}], {}, True),
    "function_call": ("auto", {}, True),
    "constraints": ({"max_cost_usd": 1.0}, {}, False),
}
USER = [{"role": "user", "content": "hello"}]


def body(model: str, fields: dict[str, Any]) -> dict[str, Any]:
    return {"model": model, "messages": USER, **fields}


def test_every_row_has_a_case_and_the_docs_hold_the_table() -> None:
    for rule in FIELDS:
        if rule.forwarded or rule.routing:
            assert rule.name in ACCEPTED, rule.name
        if rule.refuse is not None:
            assert rule.name in REFUSED, rule.name
    assert set(ACCEPTED) | set(REFUSED) <= {rule.name for rule in FIELDS}
    page = (REPO_ROOT / "docs" / "openai-compatibility.md").read_text(encoding="utf-8")
    assert compatibility_table() in page


async def test_each_row_is_honoured(service: ServiceFactory, tmp_path: Path) -> None:
    pool = tmp_path / "pool.yaml"
    pool.write_text(POOL)
    fake = FakeOpenAI()
    wrong: list[str] = []
    async with service(pool_config=pool, provider_app=fake.app()) as client:
        for rule in FIELDS:
            name = rule.name
            if name in ACCEPTED:
                value, companions = ACCEPTED[name]
                targets = ["fake-a"] if name == "logit_bias" else ["signalroute/auto", "fake-a"]
                if name == "model":
                    targets = [value]
                if name == "constraints":  # refused for a named arm
                    targets = ["signalroute/auto"]
                for model in targets:
                    sent = body(model, {**companions, name: value})
                    response = await client.post("/v1/chat/completions", json=sent)
                    if response.status_code != 200:
                        wrong.append(f"{name} to {model}: {response.status_code} {response.text}")
                        continue
                    answer = response.json()
                    if rule.forwarded and fake.bodies[-1].get(name) != value:
                        wrong.append(f"{name} to {model}: arm got {fake.bodies[-1].get(name)!r}")
                    if rule.routing and name not in ("messages", "n"):
                        stored = await client.get(
                            f"/requests/{answer['signalroute']['request_id']}"
                        )
                        logged = stored.json()["params"]["fields"].get(name)
                        if logged != value:
                            wrong.append(f"{name} to {model}: logged as {logged!r}")
                    if name == "n" and len(answer["choices"]) != value:
                        wrong.append(f"n to {model}: {len(answer['choices'])} choices")
                    if name == "messages" and fake.bodies[-1]["messages"] != value:
                        wrong.append(f"messages to {model}: arm got {fake.bodies[-1]['messages']}")
            if name in REFUSED:
                value, companions, routed = REFUSED[name]
                model = "signalroute/auto" if routed else "fake-a"
                before = len(fake.bodies)
                response = await client.post(
                    "/v1/chat/completions", json=body(model, {**companions, name: value})
                )
                message = response.json().get("error", {}).get("message", "")
                if response.status_code != 400 or f"{name}: refused" not in message:
                    wrong.append(f"{name}={value!r} to {model}: {response.status_code} {message}")
                if len(fake.bodies) != before:
                    wrong.append(f"{name}={value!r} to {model}: reached an arm")
        unknown = await client.post("/v1/chat/completions", json=body("fake-a", {"colour": "red"}))
    assert wrong == []
    assert unknown.status_code == 400
    assert unknown.json()["error"]["message"].startswith("colour: not a Chat Completions field")
