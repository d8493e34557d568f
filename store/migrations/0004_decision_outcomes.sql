-- What became of each decision, as the request's trace shows it: its outcome ("ok", "cut:
-- ...", "error: ...", "accepted", "escalated; answer replaced", ...), the arms masked with
-- their reasons, and its details (validators, detector, escalation prompt, ...). NULL for
-- decisions logged before this migration and for those of a run abandoned before it ended.
ALTER TABLE decisions
    ADD COLUMN outcome text,
    ADD COLUMN masked  jsonb,
    ADD COLUMN details jsonb;
