import asyncio
import json
from collections.abc import AsyncIterator, Callable, Mapping

import httpx
import pytest

from features.errors import (
    ProviderBadResponseError,
    ProviderRateLimitedError,
    ProviderRejectedError,
    ProviderServerError,
    ProviderTimeoutError,
)
from router.pool import Arm
from router.providers import (
    ChatRequest,
    Completion,
    Delta,
    OpenAICompatProvider,
    StreamEvent,
    ToolCallDelta,
    openai_compat,
)
from router.providers.openai_compat import parse_retry_after
from tests.router.providers.test_network import _serve
from tests.router.providers.test_network import client as network_client

ARM = Arm(
    name="small",
    base_url="http://provider.test/v1",
    model="small-1",
    api_key_env="TEST_PROVIDER_KEY",
    input_usd_per_mtok=1.0,
    output_usd_per_mtok=2.0,
    timeout_s=5.0,
)
REQUEST = ChatRequest(messages=({"role": "user", "content": "hello there"},), max_tokens=20)


def provider(handler: Callable[[httpx.Request], httpx.Response]) -> OpenAICompatProvider:
    return OpenAICompatProvider(ARM, httpx.AsyncClient(transport=httpx.MockTransport(handler)))


def completion_json(text: str, usage: Mapping[str, object] | None = None) -> dict[str, object]:
    body: dict[str, object] = {
        "id": "x",
        "object": "chat.completion",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
    }
    if usage is not None:
        body["usage"] = usage
    return body


def sse(*events: object) -> bytes:
    return b"".join(
        f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n".encode() for e in events
    )


def chunk(content: str | None = None, finish: str | None = None) -> dict[str, object]:
    delta = {} if content is None else {"content": content}
    return {
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


async def collect(events: AsyncIterator[StreamEvent]) -> tuple[str, Completion | None]:
    text, done = "", None
    async for event in events:
        if isinstance(event, Delta):
            text += event.text
        elif isinstance(event, Completion):
            done = event
    return text, done


async def test_complete_sends_model_key_and_reads_usage(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_PROVIDER_KEY", "sk-test")
    seen: dict[str, object] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["url"] = str(request.url)
        seen["auth"] = request.headers.get("authorization")
        seen["body"] = json.loads(request.content)
        usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
        return httpx.Response(
            200,
            json=completion_json("hi!", usage),
            headers={"x-ratelimit-remaining-requests": "5", "x-ratelimit-limit-requests": "100"},
        )

    result = await provider(handler).complete(REQUEST)
    assert seen["url"] == "http://provider.test/v1/chat/completions"
    assert seen["auth"] == "Bearer sk-test"
    assert seen["body"] == {
        "model": "small-1",
        "messages": [{"role": "user", "content": "hello there"}],
        "max_tokens": 20,
    }
    assert result.text == "hi!"
    assert (result.prompt_tokens, result.completion_tokens) == (10, 5)
    assert result.cost_usd == pytest.approx((10 * 1.0 + 5 * 2.0) / 1e6)
    assert result.rate_limit.headroom == pytest.approx(0.05)


async def test_reported_cost_wins_over_list_price() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        usage = {"prompt_tokens": 10, "completion_tokens": 5, "cost_usd": 0.0042}
        return httpx.Response(200, json=completion_json("ok", usage))

    assert (await provider(handler).complete(REQUEST)).cost_usd == 0.0042


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (
            httpx.Response(429, headers={"retry-after": "7"}, json={"error": {"message": "slow"}}),
            ProviderRateLimitedError,
        ),
        (httpx.Response(503, text="upstream down"), ProviderServerError),
        (httpx.Response(401, json={"error": {"message": "bad key"}}), ProviderRejectedError),
        (httpx.Response(200, text="<html>not json</html>"), ProviderBadResponseError),
        (httpx.Response(200, json={"choices": []}), ProviderBadResponseError),
    ],
)
async def test_http_failures_become_typed_errors(
    response: httpx.Response, error: type[Exception]
) -> None:
    with pytest.raises(error) as caught:
        await provider(lambda request: response).complete(REQUEST)
    assert "small" in str(caught.value)
    if isinstance(caught.value, ProviderRateLimitedError):
        assert caught.value.retry_after_s == 7.0
        assert "slow" in caught.value.message


async def test_transport_failures_become_typed_errors() -> None:
    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("too slow", request=request)

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(ProviderTimeoutError, match="within 5s"):
        await provider(timeout).complete(REQUEST)
    with pytest.raises(ProviderServerError, match="ConnectError"):
        await provider(refused).complete(REQUEST)


async def test_stream_yields_deltas_then_completion() -> None:
    seen: dict[str, object] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["body"] = json.loads(request.content)
        body = sse(
            chunk(""),
            chunk("Hel"),
            chunk("lo"),
            chunk(finish="stop"),
            {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2, "cost_usd": 0.5}},
            "[DONE]",
        )
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})

    text, done = await collect(provider(handler).stream(REQUEST))
    assert seen["body"]["stream"] is True  # type: ignore[index]
    assert seen["body"]["stream_options"] == {"include_usage": True}  # type: ignore[index]
    assert text == "Hello"
    assert done is not None
    assert done.text == "Hello"
    assert done.finish_reason == "stop"
    assert done.cost_usd == 0.5
    assert done.first_token_ms is not None


async def test_the_text_of_events_read_together_is_one_delta() -> None:
    """Each block read gives one delta of its events' text; a tool call's delta keeps its
    place after the text before it."""

    async def blocks() -> AsyncIterator[bytes]:
        yield sse(chunk("He"), chunk("l"), chunk("lo"))
        yield sse(chunk(", "), chunk("you"))
        yield sse(
            chunk("!"),
            tool_delta({"index": 0, "id": "call_1", "function": {"name": "f", "arguments": "{}"}}),
            chunk(" ok"),
            chunk(finish="stop"),
            "[DONE]",
        )

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=blocks(), headers={"content-type": "text/event-stream"})

    events = [event async for event in provider(handler).stream(REQUEST)]
    shown = [e.text if isinstance(e, Delta) else type(e).__name__ for e in events]
    assert shown == ["Hello", ", you", "!", "ToolCallDelta", " ok", "Completion"]
    done = events[-1]
    assert isinstance(done, Completion)
    assert done.text == "Hello, you! ok"


async def test_text_read_before_a_bad_event_goes_on_before_the_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = sse(chunk("Hel"), chunk("lo")) + b"data: {not json\n\n"
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})

    received: list[str] = []

    async def consume() -> None:
        async for event in provider(handler).stream(REQUEST):
            if isinstance(event, Delta):
                received.append(event.text)

    with pytest.raises(ProviderBadResponseError, match="not JSON"):
        await consume()
    assert received == ["Hello"]


async def test_cut_stream_raises_after_partial_text() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=sse(chunk("partial")))

    received: list[str] = []

    async def consume() -> None:
        async for event in provider(handler).stream(REQUEST):
            if isinstance(event, Delta):
                received.append(event.text)

    with pytest.raises(ProviderServerError, match="ended before it finished"):
        await consume()
    assert received == ["partial"]


async def test_stream_errors_before_first_byte() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"retry-after": "2"}, json={"error": "busy"})

    with pytest.raises(ProviderRateLimitedError):
        await collect(provider(handler).stream(REQUEST))

    def garbage(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"data: {not json\n\n")

    with pytest.raises(ProviderBadResponseError, match="not JSON"):
        await collect(provider(garbage).stream(REQUEST))


def test_parse_retry_after() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("soon") is None


def tool_delta(entry: dict[str, object], finish: str | None = None) -> dict[str, object]:
    return {"choices": [{"index": 0, "delta": {"tool_calls": [entry]}, "finish_reason": finish}]}


async def test_streamed_tool_calls_are_assembled_by_index() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = sse(
            tool_delta({"index": 0, "id": "call_1", "function": {"name": "f", "arguments": ""}}),
            tool_delta({"index": 1, "id": "call_2", "function": {"name": "g", "arguments": "{}"}}),
            tool_delta({"index": 0, "function": {"arguments": '{"a": '}}),
            tool_delta({"index": 0, "function": {"arguments": "1}"}}),
            chunk(finish="tool_calls"),
            "[DONE]",
        )
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})

    events = [event async for event in provider(handler).stream(REQUEST)]
    done = events[-1]
    assert isinstance(done, Completion)
    assert [(c.id, c.name, c.arguments) for c in done.tool_calls] == [
        ("call_1", "f", '{"a": 1}'),
        ("call_2", "g", "{}"),
    ]
    assert done.finish_reason == "tool_calls"
    assert [e.index for e in events[:-1] if isinstance(e, ToolCallDelta)] == [0, 1, 0, 0]


async def test_a_malformed_tool_call_delta_is_a_bad_response() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = sse(tool_delta({"id": "call_1", "function": {"name": "f"}}), "[DONE]")
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})

    with pytest.raises(ProviderBadResponseError, match="malformed tool-call delta"):
        await collect(provider(handler).stream(REQUEST))


async def test_complete_reads_the_message_tool_calls() -> None:
    call = {"id": "call_9", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    body = {
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": None, "tool_calls": [call]},
                "finish_reason": "tool_calls",
            }
        ]
    }
    done = await provider(lambda request: httpx.Response(200, json=body)).complete(REQUEST)
    assert done.text == ""
    assert [c.as_json() for c in done.tool_calls] == [call]


async def test_the_answer_does_not_wait_for_the_end_of_the_body() -> None:
    """The completion comes at ``[DONE]``; the body's end, sent later, is read afterwards
    and the connection goes back to the pool: the next call reuses it."""
    release = asyncio.Event()

    async def answer(body: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n")
        writer.write(b"transfer-encoding: chunked\r\n\r\n")
        for event in (sse(chunk("Hi"), chunk(finish="stop")), sse("[DONE]")):
            writer.write(b"%x\r\n%s\r\n" % (len(event), event))
        await writer.drain()
        await release.wait()  # the end of the body comes when the test says so
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True

    server, close = await _serve(answer)
    arm = ARM.model_copy(update={"base_url": f"{server.url}/v1", "api_key_env": None})
    try:
        async with network_client() as http:
            streaming = OpenAICompatProvider(arm, http)
            text, done = await asyncio.wait_for(collect(streaming.stream(REQUEST)), 5)
            assert (text, done is not None) == ("Hi", True)
            assert not release.is_set()  # answered before the body ended
            release.set()
            for _ in range(500):  # the end is read in the background
                if not openai_compat._TAILS:
                    break
                await asyncio.sleep(0.01)
            text, done = await asyncio.wait_for(collect(streaming.stream(REQUEST)), 5)
            assert (text, done is not None) == ("Hi", True)
        assert server.connections == 1
        assert len(server.requests) == 2
    finally:
        close()
