-- Which policy update a reward was learned as (the stage policy's update count after it).
-- A restarted service restores the newest snapshot, then learns again exactly the rewards
-- with a higher update number (and those recorded but never marked learned), in order.
ALTER TABLE rewards ADD COLUMN policy_update integer CHECK (policy_update > 0);
CREATE INDEX rewards_policy_update_idx ON rewards (policy_update);
