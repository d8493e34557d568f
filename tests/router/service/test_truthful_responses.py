"""What a response says is what happened, through the official ``openai`` client: ``n``
choices, ``stop`` and ``max_tokens`` honoured with a truthful ``finish_reason`` (routed and
to a named arm), the provider's ``content_filter``, and the provider's usage when it sent
one (estimated, and marked so, only otherwise)."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.tools.replay_pool.dataset import ReplayDataset
from tests.router.fake_openai import FakeOpenAI
from tests.router.service.conftest import ServiceFactory
from tests.router.service.test_openai_client import GPT4, openai_client, user

FAKE_POOL = """
arms:
  - {name: fake, base_url: "{self}/replay/v1", model: fake}
stages: {escalation: false, components: false, judge: never}
"""


@pytest.fixture
def prompt(replay_dataset: ReplayDataset) -> str:
    return next(r for r in replay_dataset if r.task == "mbpp" and r.split == "test").prompt


async def test_n_stop_and_max_tokens_are_honoured(service: ServiceFactory, prompt: str) -> None:
    async with service() as client:
        api = openai_client(client)
        two = await api.chat.completions.create(
            model="signalroute/auto", messages=user(prompt), n=2
        )
        two_direct = await api.chat.completions.create(model=GPT4, messages=user(prompt), n=2)
        short = await api.chat.completions.create(
            model="signalroute/auto", messages=user(prompt), max_tokens=5
        )
        short_direct = await api.chat.completions.create(
            model=GPT4, messages=user(prompt), max_completion_tokens=5
        )
        whole = await api.chat.completions.create(model=GPT4, messages=user(prompt))
        stop = (whole.choices[0].message.content or "")[40:44]
        stopped = await api.chat.completions.create(
            model="signalroute/auto", messages=user(prompt), stop=[stop]
        )
    for completion in (two, two_direct):
        assert [c.index for c in completion.choices] == [0, 1]
        details = (completion.model_extra or {})["signalroute"]
        ids = {d["request_id"] for d in details["choices"]}
        assert len(ids) == 2  # each choice is a logged request of its own
    for completion in (short, short_direct):
        assert completion.choices[0].finish_reason == "length"
        assert len(completion.choices[0].message.content or "") <= 20
    assert stop not in (stopped.choices[0].message.content or "")
    assert stopped.choices[0].finish_reason == "stop"


async def test_usage_is_the_providers_and_content_filter_comes_through(
    service: ServiceFactory, tmp_path: Path
) -> None:
    pool = tmp_path / "pool.yaml"
    pool.write_text(FAKE_POOL)
    fake = FakeOpenAI(answer="a filtered answer", finish_reason="content_filter")
    async with service(pool_config=pool, provider_app=fake.app()) as client:
        api = openai_client(client)
        routed = await api.chat.completions.create(
            model="signalroute/auto", messages=user("tell me a story")
        )
        direct = await api.chat.completions.create(model="fake", messages=user("tell me a story"))
    expected = fake.reply(fake.bodies[0]).usage()
    for completion in (routed, direct):
        assert completion.choices[0].finish_reason == "content_filter"
        assert completion.usage is not None
        assert completion.usage.prompt_tokens == expected["prompt_tokens"]
        assert completion.usage.completion_tokens == expected["completion_tokens"]
    for completion in (routed, direct):
        assert (completion.model_extra or {})["signalroute"]["usage_estimated"] is False
