-- 0001: the initial schema. Applied once, inside the migration runner's transaction.
-- Constraint names are referenced by store/translation.py (CONSTRAINT_REASONS).
-- Timestamps default to clock_timestamp(), not now(), so rows written in one transaction
-- keep the order they were written in.

CREATE EXTENSION IF NOT EXISTS vector;

-- One row per accepted chat request; completed or failed exactly once.
CREATE TABLE requests (
    id           uuid PRIMARY KEY,
    tenant       text NOT NULL DEFAULT 'default',
    user_id      text,
    session_id   text,
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    messages     jsonb NOT NULL,
    params       jsonb NOT NULL DEFAULT '{}'::jsonb,
    status       text NOT NULL DEFAULT 'accepted'
                 CONSTRAINT requests_status_known
                 CHECK (status IN ('accepted', 'completed', 'failed')),
    output       text,
    model        text,
    cost_usd     double precision,
    latency_ms   double precision,
    error        text,
    completed_at timestamptz
);

CREATE INDEX requests_created_at_idx ON requests (created_at);

-- One row per routing decision: the logged propensity that off-policy evaluation needs.
CREATE TABLE decisions (
    id             uuid PRIMARY KEY,
    request_id     uuid NOT NULL REFERENCES requests (id) ON DELETE CASCADE,
    stage          text NOT NULL,
    context        jsonb NOT NULL,
    arms           text[] NOT NULL
                   CONSTRAINT decisions_arms_nonempty CHECK (cardinality(arms) > 0),
    chosen_arm     text NOT NULL,
    probability    double precision NOT NULL
                   CONSTRAINT decisions_probability_range
                   CHECK (probability > 0 AND probability <= 1),
    pmf            jsonb NOT NULL,
    policy_name    text NOT NULL,
    policy_version integer NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT decisions_chosen_arm_eligible CHECK (chosen_arm = ANY (arms))
);

CREATE INDEX decisions_request_id_idx ON decisions (request_id);
CREATE INDEX decisions_created_at_idx ON decisions (created_at);

-- Rewards observed for a decision; an idempotency key makes a retried report a no-op.
CREATE TABLE rewards (
    id              bigserial PRIMARY KEY,
    decision_id     uuid NOT NULL REFERENCES decisions (id) ON DELETE CASCADE,
    value           double precision NOT NULL
                    CONSTRAINT rewards_value_range CHECK (value >= 0 AND value <= 1),
    source          text NOT NULL,
    idempotency_key text CONSTRAINT rewards_idempotency_key_key UNIQUE,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX rewards_decision_id_idx ON rewards (decision_id);

-- The query embedding of a request, for nearest-neighbour look-ups within a tenant.
CREATE TABLE query_embeddings (
    request_id uuid PRIMARY KEY REFERENCES requests (id) ON DELETE CASCADE,
    tenant     text NOT NULL,
    user_id    text,
    embedding  vector(384) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX query_embeddings_embedding_idx
    ON query_embeddings USING hnsw (embedding vector_cosine_ops);
CREATE INDEX query_embeddings_tenant_idx ON query_embeddings (tenant);

-- Serialized learner states, versioned per policy name.
CREATE TABLE policy_snapshots (
    id         bigserial PRIMARY KEY,
    name       text NOT NULL,
    version    integer NOT NULL
               CONSTRAINT policy_snapshots_version_positive CHECK (version > 0),
    model      bytea NOT NULL,
    meta       jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT policy_snapshots_name_version_key UNIQUE (name, version)
);
