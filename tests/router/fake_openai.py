"""An OpenAI-compatible chat-completions server for tests that need what the replay pool
does not serve (tool calls) or need to see what the router sent.

It speaks the protocol as OpenAI sends it, byte for byte in shape: ``chat.completion``
bodies with ``message.tool_calls`` and ``finish_reason: tool_calls``; streams whose first
chunk carries the role (and, for a tool call, the call's ``index``, ``id``, ``type`` and
``function.name`` with empty ``arguments``), then argument or content pieces, a chunk with
the finish reason and, when asked for, a usage chunk with no choices, then ``[DONE]``
(``tests/router/test_fake_openai.py`` checks it against the ``openai`` client's own
parsing). Every request body is kept in ``bodies``.

What it answers: a request that offers ``tools`` and does not end with a ``tool`` message
calls the forced function (``tool_choice``), or the first one offered, with ``arguments``
(``by_model`` gives a model another function and arguments, to test checks);
otherwise it says ``answer`` (default: ``fake answer to: <last user text>``, and after a
tool result ``the tool said: <result>``), cut at the first ``stop`` sequence and at
``max_tokens`` (four characters a token, finish reason ``length``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

CREATED = 1_700_000_000
FINGERPRINT = "fp_fake"


@dataclass
class FakeOpenAI:
    """The server's state: what it was sent, and what it answers."""

    arguments: str = '{"city": "Paris", "unit": "celsius"}'
    by_model: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Per model: the function it calls instead (whatever was offered) and its arguments."""
    answer: str | None = None
    finish_reason: str | None = None
    piece_chars: int = 7
    bodies: list[dict[str, Any]] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/v1/chat/completions", response_model=None)
        async def completions(request: Request) -> JSONResponse | StreamingResponse:
            body = json.loads(await request.body())
            self.bodies.append(body)
            reply = self.reply(body)
            if body.get("stream"):
                include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
                return StreamingResponse(
                    _events(reply, include_usage, self.piece_chars),
                    media_type="text/event-stream",
                )
            return JSONResponse(reply.completion())

        return app

    def reply(self, body: dict[str, Any]) -> Reply:
        messages = body.get("messages") or []
        model = str(body.get("model"))
        prompt_tokens = sum(len(str(m.get("content") or "")) for m in messages) // 4 + 1
        tools = body.get("tools") or []
        last = messages[-1] if messages else {}
        if tools and last.get("role") != "tool" and body.get("tool_choice") != "none":
            forced = body.get("tool_choice")
            name = (
                forced["function"]["name"]
                if isinstance(forced, dict)
                else tools[0]["function"]["name"]
            )
            name, arguments = self.by_model.get(model, (name, self.arguments))
            call = {"id": f"call_{len(self.bodies)}", "name": name, "arguments": arguments}
            return Reply(model, None, [call], "tool_calls", prompt_tokens)
        if self.answer is not None:
            text = self.answer
        elif last.get("role") == "tool":
            text = f"the tool said: {last.get('content')}"
        else:
            user: dict[str, Any] = next(
                (m for m in reversed(messages) if m.get("role") == "user"), {}
            )
            text = f"fake answer to: {user.get('content')}"
        finish = self.finish_reason or "stop"
        stops = body.get("stop") or []
        for stop in [stops] if isinstance(stops, str) else stops:
            if stop in text:
                text = text[: text.index(stop)]
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if limit is not None and len(text) > 4 * limit:
            text, finish = text[: 4 * limit], "length"
        return Reply(model, text, [], finish, prompt_tokens)


@dataclass(frozen=True)
class Reply:
    model: str
    content: str | None
    calls: list[dict[str, str]]
    finish_reason: str
    prompt_tokens: int

    @property
    def completion_tokens(self) -> int:
        text = (self.content or "") + "".join(c["arguments"] for c in self.calls)
        return len(text) // 4 + 1

    def usage(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }

    def tool_calls(self) -> list[dict[str, Any]]:
        return [
            {
                "id": c["id"],
                "type": "function",
                "function": {"name": c["name"], "arguments": c["arguments"]},
            }
            for c in self.calls
        ]

    def completion(self) -> dict[str, Any]:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": self.content,
            "refusal": None,
            "annotations": [],
        }
        if self.calls:
            message["tool_calls"] = self.tool_calls()
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": CREATED,
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": self.finish_reason,
                }
            ],
            "usage": self.usage(),
            "service_tier": "default",
            "system_fingerprint": FINGERPRINT,
        }

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": self.model,
            "service_tier": "default",
            "system_fingerprint": FINGERPRINT,
            "choices": [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            ],
            "usage": None,
        }


def _sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


def _events(reply: Reply, include_usage: bool, piece_chars: int) -> Iterator[bytes]:
    if reply.calls:
        for index, call in enumerate(reply.calls):
            opening = {
                "index": index,
                "id": call["id"],
                "type": "function",
                "function": {"name": call["name"], "arguments": ""},
            }
            delta: dict[str, Any] = {"tool_calls": [opening]}
            if index == 0:
                delta = {"role": "assistant", "content": None, **delta, "refusal": None}
            yield _sse(reply.chunk(delta))
            arguments = call["arguments"]
            for start in range(0, len(arguments), piece_chars):
                piece = arguments[start : start + piece_chars]
                yield _sse(
                    reply.chunk(
                        {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}
                    )
                )
    else:
        yield _sse(reply.chunk({"role": "assistant", "content": "", "refusal": None}))
        text = reply.content or ""
        for start in range(0, len(text), piece_chars):
            yield _sse(reply.chunk({"content": text[start : start + piece_chars]}))
    yield _sse(reply.chunk({}, reply.finish_reason))
    if include_usage:
        final = reply.chunk({})
        final["choices"], final["usage"] = [], reply.usage()
        yield _sse(final)
    yield b"data: [DONE]\n\n"
