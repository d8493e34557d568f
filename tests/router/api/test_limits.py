"""Size limits and the messages of the edge's own checks, against a running service."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from tests.router.api.conftest import MAX_BODY_BYTES, MAX_MESSAGES, MAX_PROMPT_CHARS

pytestmark = pytest.mark.usefixtures("replay_data_dir")

HELLO = {"role": "user", "content": "Sum 2+2?"}
JSON = {"content-type": "application/json"}


def error_of(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text[:300]
    message = response.json()["error"]["message"]
    assert isinstance(message, str)
    return message


def chunks(payload: bytes, size: int = 4096) -> Iterator[bytes]:
    """The body as a generator: httpx sends it chunked, without a content-length."""
    for at in range(0, len(payload), size):
        yield payload[at : at + size]


def big_body(chars: int) -> bytes:
    return json.dumps({"messages": [{"role": "user", "content": "x" * chars}]}).encode()


@pytest.mark.parametrize("path", ["/route-and-run", "/v1/chat/completions", "/feedback"])
def test_a_body_over_the_limit_is_413_before_it_is_parsed(client: httpx.Client, path: str) -> None:
    body = big_body(MAX_BODY_BYTES)
    message = error_of(client.post(path, content=body, headers={"content-type": "x"}), 413)
    assert f"is {len(body)} bytes" in message
    assert f"at most {MAX_BODY_BYTES} bytes (SIGNALROUTE_MAX_BODY_BYTES)" in message


def test_a_chunked_body_is_cut_off_at_the_limit(client: httpx.Client) -> None:
    response = client.post("/route-and-run", content=chunks(big_body(MAX_BODY_BYTES)), headers=JSON)
    assert f"passed {MAX_BODY_BYTES} bytes" in error_of(response, 413)
    small = json.dumps({"messages": [HELLO]}).encode()
    assert client.post("/route-and-run", content=chunks(small, 7), headers=JSON).status_code == 200


def test_too_many_messages_is_400(client: httpx.Client) -> None:
    messages = [HELLO] * (MAX_MESSAGES + 1)
    response = client.post("/route-and-run", json={"messages": messages})
    message = error_of(response, 400)
    assert f"{MAX_MESSAGES + 1} messages; at most {MAX_MESSAGES}" in message
    assert "SIGNALROUTE_MAX_MESSAGES" in message


@pytest.mark.parametrize(
    ("path", "extra"),
    [("/route-and-run", {}), ("/v1/chat/completions", {"model": "signalroute/auto"})],
)
def test_too_long_a_prompt_is_413(client: httpx.Client, path: str, extra: dict[str, str]) -> None:
    parts = [{"type": "text", "text": "y" * (MAX_PROMPT_CHARS // 2)}] * 2
    messages = [HELLO, {"role": "user", "content": parts}]
    message = error_of(client.post(path, json={"messages": messages, **extra}), 413)
    assert f"{MAX_PROMPT_CHARS + len('Sum 2+2?')} characters of text" in message
    assert "SIGNALROUTE_MAX_PROMPT_CHARS" in message


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("a\x00b", "messages.0.content: contains a NUL character"),
        ("\ud800", "messages.0.content: contains an unpaired UTF-16 surrogate"),
        ([{"type": "text", "text": 5}], "content part 0 (text) needs 'text' as a string"),
        ([{"type": "image_url"}], "content part 0 (image_url) needs 'image_url'"),
    ],
)
def test_content_the_store_or_a_provider_would_reject_is_400(
    client: httpx.Client, content: object, says: str
) -> None:
    body = json.dumps({"messages": [{"role": "user", "content": content}]}).encode()
    assert says in error_of(client.post("/route-and-run", content=body, headers=JSON), 400)


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "says"),
    [
        ("GET", "/nowhere", b"", 404, "no endpoint at /nowhere"),
        ("PUT", "/feedback", b"{}", 405, "PUT is not allowed on /feedback (allowed: POST)"),
        ("POST", "/feedback", b'{"source": "\xff"}', 400, "could not be parsed"),
        ("POST", "/feedback", b'{"reward": ', 400, "body: not valid JSON"),
        ("POST", "/feedback", b"[1]", 400, "body: must be a JSON object"),
    ],
)
def test_the_frameworks_own_errors_are_json_with_a_message(
    client: httpx.Client, method: str, path: str, body: bytes, status: int, says: str
) -> None:
    response = client.request(method, path, content=body, headers=JSON)
    assert says in error_of(response, status)


def test_an_escalation_chain_of_no_steps_is_400(client: httpx.Client) -> None:
    body = {"messages": [HELLO], "stages": {"max_escalations": 0}}
    message = error_of(client.post("/route-and-run", json=body), 400)
    assert "stages.max_escalations" in message
    assert "greater than or equal to 1" in message
