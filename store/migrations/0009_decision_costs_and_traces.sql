-- 0009: what each decision cost and how long its call took, as its trace shows them, and the
-- rest of a completed request's trace: the components of its answer, the assessment
-- (validators, judge) and the timings of its steps. NULL for rows written before this
-- migration (and for decisions that called no model: the escalation stage's "accept").
ALTER TABLE decisions
    ADD COLUMN cost_usd   double precision,
    ADD COLUMN latency_ms double precision;
ALTER TABLE requests ADD COLUMN trace jsonb;
