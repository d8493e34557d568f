-- 0008: API key scopes, and decide-only requests.

-- What a key may do: route, feedback, read (policies, requests, dashboard, metrics), admin.
-- Keys made before scopes existed keep doing what they did: route, feedback and read.
ALTER TABLE api_keys
    ADD COLUMN scopes text[] NOT NULL DEFAULT ARRAY['route', 'feedback', 'read']::text[],
    ADD CONSTRAINT api_keys_scopes_known
        CHECK (cardinality(scopes) > 0
               AND scopes <@ ARRAY['route', 'feedback', 'read', 'admin']::text[]);

-- A decide-only request (POST /route) ends 'delegated': the router chose the model, the
-- caller runs it, and its outcome comes back as feedback.
ALTER TABLE requests
    DROP CONSTRAINT requests_status_known,
    ADD CONSTRAINT requests_status_known
        CHECK (status IN ('accepted', 'completed', 'failed', 'delegated'));
