"""Property: whatever a client sends, the answer is a 2xx, or a 4xx whose JSON error says
what is wrong; never a 500; and the service keeps serving.

Bodies are drawn by hypothesis (``strategies``): well-shaped bodies with hostile values
(NUL, unpaired surrogates, huge and tiny numbers, NaN, wrong types, unknown fields), any
JSON value, and bytes that are not JSON. Each example is one real HTTP request to a running
service (real Postgres, replay pool over HTTP).
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.router.api.checks import assert_sane
from tests.router.api.conftest import LiveService
from tests.router.api.strategies import (
    chat_bodies,
    encoded,
    feedback_bodies,
    route_bodies,
    texts,
)

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)
JSON = {"content-type": "application/json"}

pytestmark = pytest.mark.usefixtures("replay_data_dir")


@pytest.fixture(scope="module")
def routed(client: httpx.Client) -> list[dict[str, Any]]:
    """A few routed requests, so that feedback and look-ups also hit ids that exist."""
    bodies = []
    for prompt in ("Sum 2+2?", "Write a python function to identify non-prime numbers."):
        response = client.post(
            "/route-and-run", json={"messages": [{"role": "user", "content": prompt}]}
        )
        assert response.status_code == 200, response.text
        bodies.append(response.json())
    return bodies


@FUZZ
@given(body=encoded(route_bodies))
def test_route_and_run(client: httpx.Client, body: bytes) -> None:
    assert_sane(client.post("/route-and-run", content=body, headers=JSON))


@FUZZ
@given(data=st.data())
def test_chat_completions(client: httpx.Client, data: st.DataObject) -> None:
    models = [m["id"] for m in client.get("/v1/models").json()["data"]]
    body = data.draw(encoded(chat_bodies(models)))
    assert_sane(client.post("/v1/chat/completions", content=body, headers=JSON))


@FUZZ
@given(data=st.data())
def test_feedback(client: httpx.Client, routed: list[dict[str, Any]], data: st.DataObject) -> None:
    known = [r["id"] for r in routed]
    decisions = [d["decision_id"] for r in routed for d in r["trace"]["decisions"]]
    about_known = st.builds(
        lambda key, value, reward, idem: (
            {key: value, "reward": reward} | ({"idempotency_key": idem} if idem else {})
        ),
        st.sampled_from(["request_id", "decision_id"]),
        st.sampled_from(known + decisions),
        st.one_of(st.floats(0, 1), st.floats(allow_nan=True)),
        st.one_of(st.none(), st.sampled_from(["k1", "k2"])),
    )
    body = data.draw(encoded(st.one_of(feedback_bodies, about_known)))
    assert_sane(client.post("/feedback", content=body, headers=JSON))


@FUZZ
@given(request_id=st.one_of(texts, st.uuids().map(str)))
def test_request_lookup(client: httpx.Client, request_id: str) -> None:
    raw = request_id.encode("utf-8", "surrogatepass")  # unpaired surrogates: bad UTF-8
    path = "/requests/" + urllib.parse.quote(raw, safe="")
    assert_sane(client.get(path))


@FUZZ
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]),
    path=st.sampled_from(
        ["/route-and-run", "/feedback", "/v1/chat/completions", "/v1/models", "/nope", "/"]
    ),
    body=st.binary(max_size=32),
)
def test_wrong_methods_and_paths(client: httpx.Client, method: str, path: str, body: bytes) -> None:
    response = client.request(method, path, content=body, headers=JSON)
    assert_sane(response)


def test_the_service_is_healthy_after_the_fuzzing(client: httpx.Client, live: LiveService) -> None:
    assert client.get("/readyz").status_code == 200
    answer = client.post(
        "/route-and-run", json={"messages": [{"role": "user", "content": "Sum 2+2?"}]}
    )
    assert answer.status_code == 200, answer.text
    metrics = client.get("/metrics").text
    served_500 = re.findall(
        r'signalroute_http_requests_total\{[^}]*status="500"[^}]*\} (\S+)', metrics
    )
    assert not served_500, served_500
