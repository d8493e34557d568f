from pathlib import Path

import numpy as np
import pytest
import vowpalwabbit

from learner import vw_policy
from learner.config import Exploration, PolicyConfig
from learner.context import ArmFeatures, Context
from learner.sampling import greedy_pmf, normalize, sample_index
from learner.vw_format import adf_lines
from learner.vw_policy import VWPolicy, vw_cost

ARMS = ("coder", "generalist", "cheap")


def context(code: bool, arms: tuple[str, ...] = ARMS) -> Context:
    return Context(
        shared={"Q": {"code": 1.0 if code else 0.0, "lang": "en"}},
        arms=tuple(ArmFeatures(a, {"A": {"arm": a}}) for a in arms),
    )


def true_reward(code: bool, arm: str) -> float:
    best = "coder" if code else "generalist"
    return 0.9 if arm == best else 0.2


def simulate(policy: VWPolicy, rounds: int, rng: np.random.Generator) -> float:
    total = 0.0
    for _ in range(rounds):
        code = bool(rng.random() < 0.5)
        ctx = context(code)
        pmf = policy.pmf(ctx)
        index = sample_index(pmf, rng)
        arm = ctx.arm_names[index]
        reward = true_reward(code, arm)
        policy.learn(ctx, arm, pmf[index], reward)
        total += reward
    return total / rounds


@pytest.mark.parametrize("exploration", ["epsilon", "squarecb", "softmax"])
def test_policy_learns_context_dependent_best_arm(exploration: str) -> None:
    rng = np.random.default_rng(7)
    config = PolicyConfig(exploration=exploration, epsilon=0.1, seed=7)  # type: ignore[arg-type]
    policy = VWPolicy("pre", config)
    simulate(policy, 1500, rng)
    code_pmf = policy.pmf(context(True))
    chat_pmf = policy.pmf(context(False))
    assert ARMS[int(np.argmax(code_pmf))] == "coder"
    assert ARMS[int(np.argmax(chat_pmf))] == "generalist"
    assert max(code_pmf) > 0.8
    # Every arm keeps some probability: the log stays usable for off-policy evaluation.
    assert min(code_pmf) > 0.0
    assert policy.updates == 1500


def test_learned_policy_beats_uniform_random() -> None:
    rng = np.random.default_rng(3)
    policy = VWPolicy("pre", PolicyConfig(epsilon=0.05, seed=3))
    simulate(policy, 1000, rng)
    late = simulate(policy, 500, rng)
    uniform = float(np.mean([true_reward(c, a) for c in (True, False) for a in ARMS]))
    assert late > uniform + 0.3


def test_masked_arms_get_no_probability_and_pmf_renormalises() -> None:
    policy = VWPolicy("pre", PolicyConfig(epsilon=0.2, seed=1))
    simulate(policy, 300, np.random.default_rng(1))
    eligible = ("generalist", "cheap")
    pmf = policy.pmf(context(True, eligible))
    assert len(pmf) == 2
    assert sum(pmf) == pytest.approx(1.0)
    assert min(pmf) >= 0.2 / 2 - 1e-6


def test_snapshot_round_trip_keeps_the_pmf() -> None:
    policy = VWPolicy("pre", PolicyConfig(seed=2))
    simulate(policy, 200, np.random.default_rng(2))
    restored = VWPolicy.restore(policy.state())
    for code in (True, False):
        assert restored.pmf(context(code)) == pytest.approx(policy.pmf(context(code)))
    assert restored.updates == 200


def test_learn_rejects_bad_probability_and_reward() -> None:
    policy = VWPolicy("pre", PolicyConfig())
    with pytest.raises(ValueError, match="probability"):
        policy.learn(context(True), "coder", 0.0, 0.5)
    with pytest.raises(ValueError, match="reward"):
        policy.learn(context(True), "coder", 0.5, 1.5)
    with pytest.raises(ValueError, match="not in tuple"):
        policy.learn(context(True), "nope", 0.5, 0.5)


def test_adf_lines_put_the_label_on_the_chosen_arm() -> None:
    lines = adf_lines(context(True), label=(1, vw_cost(0.75), 0.5))
    assert lines[0] == "shared |Q code:1 lang=en"
    assert lines[1] == "|A arm=coder"
    assert lines[2] == "0:-0.75:0.5 |A arm=generalist"


def test_greedy_pmf_puts_all_mass_on_the_most_probable_arms() -> None:
    assert greedy_pmf([0.1, 0.7, 0.2]) == [0.0, 1.0, 0.0]
    assert greedy_pmf([0.4, 0.2, 0.4]) == [0.5, 0.0, 0.5]
    with pytest.raises(ValueError, match="empty"):
        greedy_pmf([])


@pytest.mark.parametrize("exploration", ["epsilon", "squarecb", "softmax"])
def test_greedy_pmf_is_the_learned_policys_best_arm(exploration: Exploration) -> None:
    policy = VWPolicy("t", PolicyConfig(exploration=exploration, seed=3))
    simulate(policy, 1500, np.random.default_rng(3))
    for code, best in ((True, "coder"), (False, "generalist")):
        pmf = policy.pmf(context(code))
        assert max(pmf) < 1.0  # the policy still explores
        greedy = greedy_pmf(pmf)
        assert greedy[ARMS.index(best)] == 1.0
    policy.close()


def test_sampling_follows_the_pmf() -> None:
    rng = np.random.default_rng(0)
    pmf = normalize([0.7, 0.2, 0.1, -1e-9])
    draws = np.bincount([sample_index(pmf, rng) for _ in range(20_000)], minlength=4)
    assert draws[3] == 0
    assert draws / draws.sum() == pytest.approx([0.7, 0.2, 0.1, 0.0], abs=0.02)


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="epsilon"):
        PolicyConfig(epsilon=0.0)
    with pytest.raises(ValueError, match="exploration"):
        PolicyConfig(exploration="greedy")  # type: ignore[arg-type]
    assert "--squarecb" in PolicyConfig(exploration="squarecb").vw_args()


@pytest.mark.parametrize("exploration", ["epsilon", "squarecb", "softmax"])
def test_pmf_equals_the_workspace_prediction(exploration: Exploration, tmp_path: Path) -> None:
    """The PMF read through VW's native calls is the one ``Workspace.predict`` gives for the
    same model and lines, context after context."""
    rng = np.random.default_rng(11)
    policy = VWPolicy("pre", PolicyConfig(exploration=exploration, epsilon=0.1, seed=11))
    simulate(policy, 300, rng)
    state = policy.state()
    model = tmp_path / "policy.vw"
    model.write_bytes(state.model)
    reference = vowpalwabbit.Workspace(f"--quiet -i {model}")
    copy = VWPolicy.restore(state)
    try:
        for step in range(200):
            code = bool(rng.random() < 0.5)
            arms = ARMS if step % 3 else ARMS[:2]
            ctx = Context(
                shared={"Q": {"code": float(code), "x": float(rng.random()), "lang": "en"}},
                arms=tuple(ArmFeatures(a, {"A": {"arm": a, "p": step % 5}}) for a in arms),
            )
            expected = normalize(reference.predict(adf_lines(ctx)))
            assert copy.pmf(ctx) == expected
            assert copy.pmf_formatted(adf_lines(ctx)) == expected
    finally:
        reference.finish()
        copy.close()


def test_remembered_namespace_texts_give_the_same_pmf() -> None:
    """``pmf`` formats a namespace it saw before from memory: the PMF is the one of the
    context formatted afresh, across repeats, changes and the memo starting over."""
    rng = np.random.default_rng(5)
    policy = VWPolicy("pre", PolicyConfig(epsilon=0.1, seed=5))
    simulate(policy, 200, rng)
    for step in range(vw_policy.MEMO_SIZE // 3 + 300):  # past the memo's size
        ctx = Context(
            shared={"Q": {"code": float(step % 2), "x": round(float(rng.random()), 2)}},
            arms=tuple(
                ArmFeatures(a, {"A": {"arm": a}, "S": {"load": float(step % (i + 2))}})
                for i, a in enumerate(ARMS)
            ),
        )
        assert policy.pmf(ctx) == policy.pmf_formatted(adf_lines(ctx))


@pytest.mark.parametrize("exploration", ["epsilon", "squarecb", "softmax"])
def test_learning_equals_the_workspace_learning(exploration: Exploration) -> None:
    """A policy learning through VW's native calls (and remembered namespace texts) ends up
    with the model ``Workspace.learn`` builds from the same labelled lines: the same PMF on
    every later context."""
    rng = np.random.default_rng(23)
    config = PolicyConfig(exploration=exploration, epsilon=0.1, seed=23)
    policy = VWPolicy("pre", config)
    reference = vowpalwabbit.Workspace(config.vw_args())
    try:
        contexts = [
            Context(
                shared={"Q": {"code": float(step % 2), "x": round(float(rng.random()), 3)}},
                arms=tuple(ArmFeatures(a, {"A": {"arm": a, "p": step % 4}}) for a in ARMS),
            )
            for step in range(400)
        ]
        for step, ctx in enumerate(contexts[:300]):
            index = step % len(ARMS)
            reward = float(rng.random())
            policy.learn(ctx, ARMS[index], 0.4, reward)
            reference.learn(adf_lines(ctx, (index, vw_cost(reward), 0.4)))
        for ctx in contexts[300:]:
            assert policy.pmf(ctx) == normalize(reference.predict(adf_lines(ctx)))
        assert policy.updates == 300
    finally:
        reference.finish()
        policy.close()
