import numpy as np
import pytest

from features.components import Component
from features.errors import ProviderBadResponseError
from router.lifecycle.prompts import escalation_messages
from router.providers import ChatRequest, Completion, Delta, Provider
from router.tools.routing_bench.matrix import CHARS_PER_TOKEN
from router.tools.routing_bench.providers import (
    MatrixJudge,
    MatrixProvider,
    PromptIndex,
    keeps_label,
)
from tests.router.tools.routing_bench.synthetic import synthetic_matrix

MATRIX = synthetic_matrix(20)
INDEX = PromptIndex(MATRIX)


def _request(row: int) -> ChatRequest:
    return ChatRequest(messages=({"role": "user", "content": MATRIX.prompts[row].text},))


async def test_complete_returns_the_recorded_answer_and_cost() -> None:
    provider: Provider = MatrixProvider(MATRIX, "strong", INDEX)
    completion = await provider.complete(_request(3))
    assert provider.arm_name == "strong"
    assert completion.arm == "strong"
    assert completion.text == MATRIX.response(3, MATRIX.column("strong"))
    assert completion.cost_usd == pytest.approx(MATRIX.cost_usd[3, MATRIX.column("strong")])
    assert completion.finish_reason == "stop"


async def test_stream_yields_pieces_then_one_completion() -> None:
    provider = MatrixProvider(MATRIX, "cheap", INDEX, chunk_chars=5)
    events = [event async for event in provider.stream(_request(0))]
    *deltas, last = events
    assert all(isinstance(d, Delta) for d in deltas)
    assert len(deltas) > 3
    assert isinstance(last, Completion)
    assert "".join(d.text for d in deltas if isinstance(d, Delta)) == last.text
    assert last == await provider.complete(_request(0))


async def test_escalation_prompt_maps_to_its_request_and_pays_the_extra_input() -> None:
    provider = MatrixProvider(MATRIX, "strong", INDEX)
    plain = await provider.complete(_request(5))
    messages = escalation_messages(_request(5).messages, "a wrong answer", ["judge said so"])
    escalated = await provider.complete(ChatRequest(messages=messages))
    assert escalated.text == plain.text
    extra_chars = len(str(messages[-1]["content"])) - len(MATRIX.prompts[5].text)
    price = MATRIX.prices["strong"].input_usd_per_mtok
    expected = plain.cost_usd + extra_chars / CHARS_PER_TOKEN * price / 1e6
    assert escalated.cost_usd == pytest.approx(expected)


async def test_a_prompt_the_matrix_lacks_is_a_provider_error() -> None:
    provider = MatrixProvider(MATRIX, "mid", INDEX)
    request = ChatRequest(messages=({"role": "user", "content": "something else entirely"},))
    with pytest.raises(ProviderBadResponseError, match="no prompt of the routing matrix"):
        await provider.complete(request)
    with pytest.raises(ProviderBadResponseError):
        [event async for event in provider.stream(request)]


async def test_a_perfect_judge_reports_the_label_and_bills_the_judge_model() -> None:
    judge = MatrixJudge(MATRIX, INDEX, accuracy=1.0, seed=0)
    messages = _request(1).messages  # a hard prompt: cheap is wrong, strong is right
    wrong = await judge.score(messages, MATRIX.response(1, MATRIX.column("cheap")))
    right = await judge.score(messages, MATRIX.response(1, MATRIX.column("strong")))
    assert (wrong.score, right.score) == (0.0, 1.0)
    assert right.arm == "mid"
    assert right.cost_usd == pytest.approx(MATRIX.cost_usd[1, MATRIX.column("mid")])
    unknown = await judge.score(messages, "an answer nobody recorded, about something else")
    assert unknown.score == 0.0


async def test_a_judge_of_accuracy_zero_always_flips() -> None:
    judge = MatrixJudge(MATRIX, INDEX, accuracy=0.0, seed=0)
    verdict = await judge.score(_request(1).messages, MATRIX.response(1, MATRIX.column("strong")))
    assert verdict.score == 0.0


def test_label_flips_are_deterministic_and_at_the_stated_rate() -> None:
    keeps = [keeps_label(7, f"p{i}", "B", 0.9) for i in range(4000)]
    assert keeps == [keeps_label(7, f"p{i}", "B", 0.9) for i in range(4000)]
    assert np.mean(keeps) == pytest.approx(0.9, abs=0.02)
    assert keeps != [keeps_label(8, f"p{i}", "B", 0.9) for i in range(4000)]


def _halves(model: str, row: int) -> tuple[Component, Component]:
    text = MATRIX.response(row, MATRIX.column(model))
    middle = len(text) // 2
    return Component("prose", text[:middle], arm=model), Component(
        "prose", text[middle:], arm=model
    )


async def test_per_component_each_part_takes_the_label_of_the_answer_it_comes_from() -> None:
    judge = MatrixJudge(MATRIX, INDEX, accuracy=1.0, seed=0)
    messages = _request(1).messages  # cheap is wrong, strong is right
    wrong = await judge.score_components(messages, _halves("cheap", 1))
    right = await judge.score_components(messages, _halves("strong", 1))
    mixed = await judge.score_components(
        messages, (_halves("cheap", 1)[0], _halves("strong", 1)[1])
    )
    assert [c.score for c in wrong.components] == [0.0, 0.0]
    assert [c.score for c in right.components] == [1.0, 1.0]
    assert [(c.arm, c.score) for c in mixed.components] == [("cheap", 0.0), ("strong", 1.0)]
    assert (wrong.score, right.score, mixed.score) == (0.0, 1.0, 0.0)
    assert [c.index for c in mixed.components] == [0, 1]
    assert mixed.cost_usd == pytest.approx(MATRIX.cost_usd[1, MATRIX.column("mid")])
    flipped = await MatrixJudge(MATRIX, INDEX, accuracy=0.0, seed=0).score_components(
        messages, _halves("strong", 1)
    )
    assert [c.score for c in flipped.components] == [0.0, 0.0]
