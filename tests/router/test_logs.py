"""JSON log lines carry the request id of the HTTP request they were logged in."""

from __future__ import annotations

import json
import logging

from router.logs import REQUEST_ID, JsonFormatter, RequestIdFilter


def record(message: str, **extra: object) -> logging.LogRecord:
    entry = logging.LogRecord("signalroute.test", logging.WARNING, __file__, 1, message, (), None)
    entry.__dict__.update(extra)
    RequestIdFilter().filter(entry)
    return entry


def test_a_line_is_one_json_object_with_the_request_id_and_extras() -> None:
    token = REQUEST_ID.set("req-42")
    try:
        line = JsonFormatter().format(record("routed %s", arm="gpt-4"))
    finally:
        REQUEST_ID.reset(token)
    entry = json.loads(line)
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "signalroute.test"
    assert entry["request_id"] == "req-42"
    assert entry["arm"] == "gpt-4"
    assert entry["ts"].endswith("+00:00")


def test_outside_a_request_there_is_no_request_id() -> None:
    entry = json.loads(JsonFormatter().format(record("starting")))
    assert "request_id" not in entry
    assert entry["message"] == "starting"
