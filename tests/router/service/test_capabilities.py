"""What a request needs of its arm: image parts need ``vision``, tools ``tools``,
``reasoning_effort`` ``reasoning``; arms without it are masked, a named arm without it or a
pool with none is a 422 that says so. A JSON format goes as ``response_format`` only to
arms with ``json``; the others get it in the prompt."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.router.fake_openai import FakeOpenAI
from tests.router.service.conftest import ServiceFactory

POOL = """
arms:
  - {name: plain, base_url: "{self}/replay/v1", model: plain}
  - {name: seeing, base_url: "{self}/replay/v1", model: seeing, capabilities: [vision]}
  - {name: json-mode, base_url: "{self}/replay/v1", model: json-mode, capabilities: [json]}
stages: {escalation: false, components: false, judge: never, in_generation: false}
"""
IMAGE = [
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "What is in this picture?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        ],
    }
]
USER = [{"role": "user", "content": "Give me a colour."}]


def chat(model: str, messages: list[Any], **fields: Any) -> dict[str, Any]:
    return {"model": model, "messages": messages, **fields}


async def test_image_parts_go_only_to_arms_with_vision(
    service: ServiceFactory, tmp_path: Path
) -> None:
    pool = tmp_path / "pool.yaml"
    pool.write_text(POOL)
    fake = FakeOpenAI()
    async with service(pool_config=pool, provider_app=fake.app()) as client:
        routed = [
            (await client.post("/v1/chat/completions", json=chat("signalroute/auto", IMAGE))).json()
            for _ in range(4)
        ]
        named = await client.post("/v1/chat/completions", json=chat("plain", IMAGE))
        on_route = await client.post(
            "/route-and-run", json={"messages": IMAGE, "constraints": {"max_cost_usd": 1}}
        )
        constrained = await client.post(
            "/v1/chat/completions",
            json=chat("signalroute/auto", USER, constraints={"capabilities": ["json"]}),
        )
        tools = await client.post(
            "/v1/chat/completions",
            json=chat(
                "signalroute/auto",
                USER,
                tools=[{"type": "function", "function": {"name": "f"}}],
            ),
        )
    assert {r["model"] for r in routed} == {"seeing"}
    masked = routed[0]["signalroute"]["trace"]["decisions"][0]["masked"]
    assert masked["plain"] == "lacks capability vision (the request has image parts)"
    assert named.status_code == 422
    assert named.json()["error"]["message"] == (
        "plain cannot serve this request: lacks capability vision (the request has image parts)"
    )
    assert on_route.status_code == 200
    assert on_route.json()["model"] == "seeing"
    assert constrained.json()["model"] == "json-mode"  # constraints mask arms on /v1 too
    masked = constrained.json()["signalroute"]["trace"]["decisions"][0]["masked"]
    assert masked["plain"] == "lacks capability json"
    assert tools.status_code == 422
    assert tools.json()["error"]["message"].startswith(
        "no arm that may serve this request has the tools capability, and the request offers"
    )
    assert [body["model"] for body in fake.bodies] == ["seeing"] * 5 + ["json-mode"]


async def test_a_json_format_is_a_parameter_only_for_arms_with_json(
    service: ServiceFactory, tmp_path: Path
) -> None:
    pool = tmp_path / "pool.yaml"
    pool.write_text(POOL)
    fake = FakeOpenAI(answer='{"colour": "red"}')
    json_object = {"type": "json_object"}
    async with service(pool_config=pool, provider_app=fake.app()) as client:
        for model in ("plain", "json-mode"):
            response = await client.post(
                "/v1/chat/completions", json=chat(model, USER, response_format=json_object)
            )
            assert response.status_code == 200
    plain, native = fake.bodies
    assert "response_format" not in plain
    assert plain["messages"][0]["role"] == "system"
    assert plain["messages"][0]["content"].startswith("Answer with one JSON object only")
    assert plain["messages"][1:] == USER
    assert native["response_format"] == json_object
    assert native["messages"] == USER
