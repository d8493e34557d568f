"""The OpenAI request shapes: which text is the prompt, which fields are tolerated."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from router.tools.replay_pool.protocol import Answer, ChatCompletionRequest, Usage, estimate_tokens


def request(**body: object) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate({"model": "m", **body})


def test_prompt_is_the_last_user_message() -> None:
    chat = request(
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "answer"},
            {"role": "user", "content": "second"},
            {"role": "assistant", "content": None},
        ]
    )
    assert chat.prompt_text() == "second"


def test_list_content_joins_its_text_parts() -> None:
    chat = request(
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "part one"},
                    {"type": "image_url", "image_url": {"url": "data:,"}},
                    {"type": "text", "text": "part two"},
                ],
            }
        ]
    )
    assert chat.prompt_text() == "part one\npart two"


def test_no_user_message_is_an_error() -> None:
    with pytest.raises(ValueError, match="user"):
        request(messages=[{"role": "system", "content": "x"}]).prompt_text()


def test_extra_openai_fields_are_tolerated() -> None:
    chat = request(
        messages=[{"role": "user", "content": "hi", "name": "u1"}],
        temperature=0.2,
        top_p=0.9,
        seed=3,
        response_format={"type": "json_object"},
        stream=True,
        stream_options={"include_usage": True},
        max_completion_tokens=5,
        max_tokens=9,
    )
    assert chat.stream
    assert chat.include_usage
    assert chat.token_limit() == 5


@pytest.mark.parametrize(
    "body",
    [{}, {"messages": []}, {"messages": [{"content": "no role"}]}, {"messages": "x"}],
)
def test_malformed_bodies_are_rejected(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        request(**body)


def test_usage_and_bodies() -> None:
    assert [estimate_tokens(t) for t in ("", "a", "abcd", "abcde")] == [0, 1, 1, 2]
    answer = Answer("id1", 7, "m", "hello", "stop", Usage(3, 2, 0.5))
    body = answer.completion()
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "hello"}
    assert body["usage"] == {
        "prompt_tokens": 3,
        "completion_tokens": 2,
        "total_tokens": 5,
        "cost_usd": 0.5,
    }
    assert answer.usage_chunk()["choices"] == []
    assert answer.chunk({}, "stop")["choices"][0]["finish_reason"] == "stop"
