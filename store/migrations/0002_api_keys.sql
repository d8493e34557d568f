-- 0002: API keys bound to tenants, the key that made each request, and spend look-ups.
-- A key is stored as the sha256 of its token only; the token is shown once, when created.

CREATE TABLE api_keys (
    id         uuid PRIMARY KEY,
    tenant     text NOT NULL
               CONSTRAINT api_keys_tenant_nonempty CHECK (tenant <> ''),
    name       text,
    prefix     text NOT NULL,
    key_hash   text NOT NULL
               CONSTRAINT api_keys_key_hash_sha256 CHECK (key_hash ~ '^[0-9a-f]{64}$')
               CONSTRAINT api_keys_key_hash_key UNIQUE,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    revoked_at timestamptz
);

CREATE INDEX api_keys_tenant_idx ON api_keys (tenant);

-- Which key made a request (NULL in local mode): feedback must come with the same key.
ALTER TABLE requests ADD COLUMN api_key_id uuid REFERENCES api_keys (id);

-- Spend per tenant and per session is summed from here when a process first needs it.
CREATE INDEX requests_tenant_session_idx ON requests (tenant, session_id);
