-- Rewards that count once, and the policy each reward was learned into.
--
-- counted: whether the reward is the one a policy may learn for its decision and source.
-- One source's reward on one decision is learned once: a later reward of the same source
-- (under another idempotency key, or none) is recorded with counted = false and never
-- learned. Rewards recorded before this migration keep the first of each (decision, source)
-- counted.
--
-- policy_name: the policy that learned the reward, as update policy_update of it (the name
-- its snapshots are saved under: the stage for the shared policy, 'stage:tenant:NAME' for a
-- tenant's own policy), or 'stage:prior' for a reward held for its tenant while the frozen
-- prior served it (learned by the tenant's own policy once it has one), or 'unreadable' for
-- one whose decision context the learner cannot read. NULL: not learned yet. Rewards learned before this migration were learned by their stage's shared policy.
ALTER TABLE rewards
    ADD COLUMN counted     boolean NOT NULL DEFAULT true,
    ADD COLUMN policy_name text;

UPDATE rewards AS w SET policy_name = d.stage
FROM decisions AS d
WHERE d.id = w.decision_id AND w.policy_update IS NOT NULL;

UPDATE rewards SET counted = false
WHERE id IN (
    SELECT id FROM (
        SELECT id, row_number() OVER (PARTITION BY decision_id, source ORDER BY id) AS n
        FROM rewards
    ) AS ranked
    WHERE ranked.n > 1
);

CREATE UNIQUE INDEX rewards_counted_once_idx ON rewards (decision_id, source) WHERE counted;
CREATE INDEX rewards_unlearned_idx ON rewards (id) WHERE policy_name IS NULL AND counted;
CREATE INDEX rewards_policy_name_idx ON rewards (policy_name, policy_update);
