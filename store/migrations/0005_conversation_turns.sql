-- The look-ups of a conversation's previous turn: by the key of the messages a request was
-- sent with (params->>'turn_key': the next turn's messages begin with them), and by session.
CREATE INDEX requests_turn_key_idx ON requests (tenant, (params->>'turn_key'), created_at);
CREATE INDEX requests_session_idx ON requests (tenant, session_id, created_at);
