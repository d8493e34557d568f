"""What every answer to hostile input must look like."""

from __future__ import annotations

import json
from typing import Any

import httpx

UPSTREAM_CONTENT_FAILURE = "every run was cut"
"""The one 5xx a valid request may get from a healthy pool: every run was cut by a stall
limit (of microseconds) or the cost cap, which cut a request's last run too (content
detectors let the last run finish): 502, with the cuts named. See
docs/operations/reliability.md."""


def is_upstream_content_failure(status: int, error: Any) -> bool:
    return (
        status == 502
        and isinstance(error, dict)
        and error.get("code") == "provider_error"
        and str(error.get("message", "")).startswith(UPSTREAM_CONTENT_FAILURE)
    )


def assert_error_body(status: int, payload: Any) -> None:
    """An error is ``{"error": {"code", "message", "type"}}`` with a message that says what."""
    assert isinstance(payload, dict), payload
    error = payload.get("error")
    assert isinstance(error, dict), payload
    assert isinstance(error.get("code"), str), payload
    assert error["code"], payload
    message = error.get("message")
    assert isinstance(message, str), payload
    assert len(message) >= 10, payload
    assert status < 500 or is_upstream_content_failure(status, error), (status, payload)


def sse_payloads(text: str) -> list[tuple[str, Any]]:
    """(event name, decoded data) of each server-sent event; ``[DONE]`` kept as a string."""
    events: list[tuple[str, Any]] = []
    for block in text.split("\n\n"):
        name, data = "message", []
        for line in block.splitlines():
            if line.startswith("event:"):
                name = line[len("event:") :].strip()
            elif line.startswith("data:"):
                data.append(line[len("data:") :].strip())
        if data:
            joined = "\n".join(data)
            events.append((name, joined if joined == "[DONE]" else json.loads(joined)))
    return events


def assert_sane(response: httpx.Response) -> None:
    """2xx, or 4xx with a JSON error body and a clear message; never a 500.

    A stream's errors arrive as events after its 200: they are held to the same rule.
    """
    status = response.status_code
    assert status < 500 or status == 502, (status, response.text[:500])
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        assert status == 200
        for name, payload in sse_payloads(response.text):
            if name == "error" or (isinstance(payload, dict) and "error" in payload):
                error = payload.get("error") if isinstance(payload, dict) else None
                assert_error_body(502 if error else 500, payload)
        return
    if status in (307, 308):  # a trailing slash: the same URL without it
        assert response.headers.get("location"), response.headers
        return
    if status < 400:
        return
    try:
        payload = response.json()  # every error is JSON
    except ValueError:
        raise AssertionError(f"not JSON: {status} {response.text[:300]!r}") from None
    assert_error_body(status, payload)
