import numpy as np
import pytest

from learner.anchor import AnchorConfig, Evidence, anchored_pmf

ACTIONS = ("accept", "escalate:strong", "escalate:mid")


def test_a_cold_stage_follows_its_rule() -> None:
    """Whatever the untrained policy's PMF, the rule's action is taken when not exploring,
    and keeps most of the mass when exploring."""
    config = AnchorConfig(explore_share=0.2)
    uniform = [1 / 3] * 3
    frozen = anchored_pmf(uniform, ACTIONS, "accept", "passed", Evidence(), config, explore=False)
    assert frozen == [1.0, 0.0, 0.0]
    learning = anchored_pmf(uniform, ACTIONS, "accept", "passed", Evidence(), config, explore=True)
    assert learning == pytest.approx([0.8 + 0.2 / 3, 0.2 / 3, 0.2 / 3])
    assert sum(learning) == pytest.approx(1.0)


def test_the_policy_overrules_the_rule_only_on_evidence() -> None:
    config = AnchorConfig(min_evidence=20, z=1.5)
    policy = [0.1, 0.1, 0.8]  # the policy's greedy action is escalate:mid
    evidence = Evidence()
    rng = np.random.default_rng(0)
    for _ in range(19):  # not enough rewards yet, however good they look
        evidence.add("failed", "escalate:mid", 0.9)
        evidence.add("failed", "escalate:strong", 0.1)
    rule = "escalate:strong"
    assert anchored_pmf(policy, ACTIONS, rule, "failed", evidence, config, explore=False)[1] == 1
    evidence.add("failed", "escalate:mid", 0.9)
    evidence.add("failed", "escalate:strong", 0.1)
    assert anchored_pmf(policy, ACTIONS, rule, "failed", evidence, config, explore=False)[2] == 1
    # a small, noisy difference does not overrule it
    noisy = Evidence()
    for _ in range(40):
        noisy.add("failed", "escalate:mid", float(rng.random() < 0.55))
        noisy.add("failed", "escalate:strong", float(rng.random() < 0.5))
    assert not noisy.beats("failed", "escalate:mid", "escalate:strong", config)
    # evidence is per bucket: another bucket still follows the rule
    assert anchored_pmf(policy, ACTIONS, rule, "passed", evidence, config, explore=False)[1] == 1


def test_ties_in_the_policy_favour_the_rule() -> None:
    evidence = Evidence()
    for _ in range(30):
        evidence.add("b", "escalate:mid", 1.0)
        evidence.add("b", "accept", 0.0)
    pmf = anchored_pmf(
        [0.5, 0.0, 0.5], ACTIONS, "accept", "b", evidence, AnchorConfig(), explore=False
    )
    assert pmf == [1.0, 0.0, 0.0]  # the tie resolves to the rule, whatever the evidence


def test_anchoring_is_never_worse_than_the_rule_in_a_simulation() -> None:
    """A two-bucket world where the rule is right in one bucket and wrong in the other: the
    anchored choice keeps the rule where it is right and learns to leave it where not."""
    rng = np.random.default_rng(7)
    means = {
        "passed": {"accept": 0.9, "escalate:strong": 0.7, "escalate:mid": 0.6},
        "failed": {"accept": 0.2, "escalate:strong": 0.4, "escalate:mid": 0.75},
    }
    rules = {"passed": "accept", "failed": "escalate:strong"}
    evidence, config = Evidence(), AnchorConfig()
    for _ in range(1500):
        bucket = "passed" if rng.random() < 0.6 else "failed"
        pmf = anchored_pmf(
            [1 / 3] * 3, ACTIONS, rules[bucket], bucket, evidence, config, explore=True
        )
        action = ACTIONS[int(rng.choice(3, p=pmf))]
        evidence.add(bucket, action, float(rng.random() < means[bucket][action]))
    for bucket, best in (("passed", "accept"), ("failed", "escalate:mid")):
        policy = [0.0, 0.0, 0.0]
        policy[ACTIONS.index(best)] = 1.0  # a policy that has learned the best arm
        chosen = anchored_pmf(
            policy, ACTIONS, rules[bucket], bucket, evidence, config, explore=False
        )
        assert ACTIONS[chosen.index(1.0)] == best
    wrong = [0.0, 1.0, 0.0]  # a policy that has learned the wrong arm where the rule is right
    chosen = anchored_pmf(wrong, ACTIONS, "accept", "passed", evidence, config, explore=False)
    assert chosen == [1.0, 0.0, 0.0]


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="one probability"):
        anchored_pmf([1.0], ACTIONS, "accept", "b", Evidence(), AnchorConfig(), explore=False)
    with pytest.raises(ValueError, match="not among"):
        anchored_pmf([1 / 3] * 3, ACTIONS, "x", "b", Evidence(), AnchorConfig(), explore=False)
    for field, value in (("min_evidence", 0), ("z", -1.0), ("explore_share", 1.5)):
        with pytest.raises(ValueError, match=field):
            AnchorConfig(**{field: value})  # type: ignore[arg-type]


def test_the_pooled_best_action_needs_enough_evidence() -> None:
    config = AnchorConfig(min_evidence=3)
    evidence = Evidence()
    assert evidence.best_pooled(ACTIONS, config) is None
    for bucket in ("code", "prose", "code"):
        evidence.add(bucket, "escalate:mid", 0.6)
        evidence.add(bucket, "accept", 0.9)
    evidence.add("code", "escalate:strong", 1.0)  # the best mean, but one reward only
    assert evidence.count("code", "accept") == 2
    assert evidence.best_pooled(ACTIONS, config) == "accept"  # pooled over the buckets
    assert evidence.best_pooled(("escalate:mid", "escalate:strong"), config) == "escalate:mid"
    assert evidence.mean("nowhere", "accept") is None


def test_the_most_promising_action_is_tried_before_a_few_rewards_condemn_it() -> None:
    """Learning, a "single best action" rule picks by upper bound: an action never rewarded
    first, then the highest mean plus z standard errors, so an action that was unlucky a few
    times is tried again before an action with more evidence but a lower bound."""
    config = AnchorConfig(min_evidence=3, z=1.5)
    evidence = Evidence()
    assert evidence.most_promising((), config) is None
    assert evidence.most_promising(ACTIONS, config) == "accept"  # none rewarded: first of equals
    for _ in range(40):
        evidence.add("any", "escalate:mid", 0.7)
        evidence.add("any", "escalate:mid", 0.6)
    assert evidence.most_promising(ACTIONS, config) == "accept"  # never rewarded yet
    evidence.add("any", "accept", 0.3)
    evidence.add("any", "accept", 0.5)
    evidence.add("any", "escalate:strong", 0.6)
    # accept: mean 0.4, sample variance 0.02 over two rewards, bound 0.4 + 1.5 * 0.1 = 0.55;
    # strong: one reward, so the prior variance 0.25, bound 0.6 + 1.5 * 0.5 = 1.35
    assert evidence.most_promising(ACTIONS, config) == "escalate:strong"
    for _ in range(30):
        evidence.add("any", "escalate:strong", 0.4)
    # strong: mean 0.41, bound 0.43; mid: mean 0.65 on 80 rewards, bound 0.67; accept 0.55
    assert evidence.most_promising(ACTIONS, config) == "escalate:mid"
    assert evidence.best_pooled(ACTIONS, config) == "escalate:mid"  # frozen: best mean


def test_paired_rewards_reveal_a_small_steady_difference_unpaired_ones_hide() -> None:
    """Skipping the judge earns its small price more on every answer the verdict would not
    have changed, and loses a lot on the rare one it would have repaired. Compared as pairs,
    the steady difference shows; compared as two independent samples, the shared luck of
    each request (its answer right or wrong) drowns it."""
    config = AnchorConfig(min_evidence=20, z=1.5)
    rng = np.random.default_rng(0)
    paired, unpaired = Evidence(), Evidence()
    for _ in range(100):
        quality = float(rng.random() < 0.7)  # right or wrong, whatever the gate does
        ask, skip = quality - 0.02, quality  # the verdict changes nothing, costs 0.02
        paired.add_pair("b", "ask", ask, "skip", skip)
        unpaired.add("b", "ask", ask)
        unpaired.add("b", "skip", skip)
    assert paired.beats("b", "skip", "ask", config)
    assert not paired.beats("b", "ask", "skip", config)
    assert not unpaired.beats("b", "skip", "ask", config)
    assert paired.count("b", "skip") == 100  # each half counts as a reward, as add counts it
    few = Evidence()
    for _ in range(19):
        few.add_pair("b", "ask", 0.0, "skip", 1.0)
    assert not few.beats("b", "skip", "ask", config)  # not enough pairs (nor rewards) yet
