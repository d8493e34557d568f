import numpy as np
import pytest

from features.embedding import HashingEmbedder
from router.tools.routing_bench import baselines
from router.tools.routing_bench.baselines import Neighbours
from router.tools.routing_bench.matrix import CHARS_PER_TOKEN
from tests.router.tools.routing_bench.synthetic import COST_USD, synthetic_matrix

MATRIX = synthetic_matrix(40)
TRAIN, TEST = MATRIX.rows("train"), MATRIX.rows("test")
CHEAP, MID, STRONG = (MATRIX.column(m) for m in ("cheap", "mid", "strong"))
REF = COST_USD["strong"]


def test_oracle_takes_the_cheapest_right_model() -> None:
    columns = baselines.oracle_columns(MATRIX, TEST)
    tasks = [MATRIX.prompts[r].task for r in TEST]
    for row, task, column in zip(TEST, tasks, columns, strict=True):
        if task == "easy":
            assert column == CHEAP
        else:
            assert column == (MID if row % 4 == 1 else STRONG)
    assert baselines.oracle(MATRIX, TEST).mean_quality == 1.0


def test_single_and_random() -> None:
    strong = baselines.single(MATRIX, TEST, STRONG)
    assert strong.mean_quality == 1.0
    assert strong.mean_cost_usd == pytest.approx(REF)
    random = baselines.random_router(MATRIX, TEST)
    assert random.mean_cost_usd == pytest.approx(np.mean(list(COST_USD.values())))


def test_task_router_learns_the_best_arm_per_task_on_train() -> None:
    free = baselines.task_router(MATRIX, TRAIN, TEST, lambda_cost=0.0, cost_ref_usd=REF)
    assert free.mean_quality == 1.0  # cheap (tied with strong, cheaper) on easy, strong on hard
    stingy = baselines.task_router(MATRIX, TRAIN, TEST, lambda_cost=10.0, cost_ref_usd=REF)
    assert stingy.mean_cost_usd == pytest.approx(COST_USD["cheap"])


def test_knn_router_predicts_from_similar_train_prompts() -> None:
    embedder = HashingEmbedder()
    neighbours = Neighbours.find(
        TRAIN,
        baselines.embed_rows(MATRIX, TRAIN, embedder),
        baselines.embed_rows(MATRIX, TEST, embedder),
        k=5,
    )
    assert neighbours.rows.shape == (len(TEST), 5)
    routed = baselines.knn_router(MATRIX, TEST, neighbours, lambda_cost=0.1, cost_ref_usd=REF)
    assert routed.mean_quality == 1.0
    assert routed.mean_cost_usd < COST_USD["strong"]


def test_cascade_with_a_perfect_judge_escalates_exactly_the_wrong_answers() -> None:
    result = baselines.cascade(MATRIX, TEST, cheap=CHEAP, strong=STRONG, judge_accuracy=1.0, seed=0)
    hard = np.array([MATRIX.prompts[r].task == "hard" for r in TEST])
    assert result.mean_quality == 1.0
    judge = COST_USD["mid"]
    expected = COST_USD["cheap"] + judge + hard * COST_USD["strong"]
    np.testing.assert_allclose(result.cost_usd, expected)
    chosen = baselines.cascade_cheap_model(
        MATRIX, TRAIN, strong=STRONG, judge_accuracy=1.0, seeds=(0,)
    )
    assert chosen == CHEAP


def test_cascade_sent_the_escalation_prompt_pays_for_the_rejected_answer_it_carries() -> None:
    plain = baselines.cascade(MATRIX, TEST, cheap=CHEAP, strong=STRONG, judge_accuracy=1.0, seed=0)
    prompted = baselines.cascade(
        MATRIX,
        TEST,
        cheap=CHEAP,
        strong=STRONG,
        judge_accuracy=1.0,
        seed=0,
        escalation_prompt=True,
    )
    np.testing.assert_array_equal(prompted.quality, plain.quality)
    hard = np.array([MATRIX.prompts[r].task == "hard" for r in TEST])
    extra = prompted.cost_usd - plain.cost_usd
    assert np.all(extra[~hard] == 0.0)
    price = MATRIX.prices["strong"]
    for row, added in zip(TEST[hard], extra[hard], strict=True):
        rejected = MATRIX.response(int(row), CHEAP)
        request = len(MATRIX.prompts[int(row)].text)
        # the request, the judge's reason and the rejected answer, at the strong input price
        carried = request + len(rejected) + len("looks wrong")
        chars = added / price.input_usd_per_mtok * 1e6 * CHARS_PER_TOKEN + request
        assert carried < chars < carried + 400  # plus the escalation prompt's fixed wording
