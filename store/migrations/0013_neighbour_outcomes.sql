-- 0013: each query embedding carries its request's pre-generation outcomes, so that the
-- historical look-up is one kNN index scan with no join (store.embeddings.neighbour_outcomes).
--
-- pre_decision_ids, pre_arms, pre_rewards, pre_decided_at: the request's decisions at stage
-- 'pre', ordered by (created_at, id): their ids, chosen arms, mean counted reward (NULL: none
-- yet) and times. NULL when the request has no such decision. Triggers keep them what the
-- decisions and rewards tables say, whatever order the rows arrive in: an embedding row
-- reads its request's outcomes when it is inserted, and a decision or reward written,
-- changed or deleted later refreshes the row of its request.
ALTER TABLE query_embeddings
    ADD COLUMN pre_decision_ids uuid[],
    ADD COLUMN pre_arms         text[],
    ADD COLUMN pre_rewards      double precision[],
    ADD COLUMN pre_decided_at   timestamptz[];

CREATE FUNCTION pre_outcomes(rid uuid)
RETURNS TABLE (ids uuid[], arms text[], rewards double precision[], decided_at timestamptz[])
LANGUAGE sql STABLE AS $$
    SELECT array_agg(d.id ORDER BY d.created_at, d.id),
           array_agg(d.chosen_arm ORDER BY d.created_at, d.id),
           array_agg(
               (SELECT avg(w.value) FROM rewards AS w WHERE w.decision_id = d.id AND w.counted)
               ORDER BY d.created_at, d.id
           ),
           array_agg(d.created_at ORDER BY d.created_at, d.id)
    FROM decisions AS d
    WHERE d.request_id = rid AND d.stage = 'pre'
$$;

CREATE FUNCTION refresh_pre_outcomes(rid uuid) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    -- Most rows arrive before their request's embedding (the journal writes it last): then
    -- there is nothing to refresh, and the index probe is all this costs.
    IF EXISTS (SELECT 1 FROM query_embeddings WHERE request_id = rid) THEN
        UPDATE query_embeddings AS q
        SET (pre_decision_ids, pre_arms, pre_rewards, pre_decided_at) =
            (SELECT o.ids, o.arms, o.rewards, o.decided_at FROM pre_outcomes(rid) AS o)
        WHERE q.request_id = rid;
    END IF;
END;
$$;

CREATE FUNCTION query_embeddings_read_outcomes() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    SELECT o.ids, o.arms, o.rewards, o.decided_at
    INTO NEW.pre_decision_ids, NEW.pre_arms, NEW.pre_rewards, NEW.pre_decided_at
    FROM pre_outcomes(NEW.request_id) AS o;
    RETURN NEW;
END;
$$;

CREATE TRIGGER query_embeddings_outcomes
    BEFORE INSERT OR UPDATE OF request_id ON query_embeddings
    FOR EACH ROW EXECUTE FUNCTION query_embeddings_read_outcomes();

CREATE FUNCTION decisions_refresh_outcomes() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' AND OLD.stage = 'pre' THEN
        PERFORM refresh_pre_outcomes(OLD.request_id);
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.stage = 'pre'
       AND (TG_OP = 'INSERT' OR NEW.request_id IS DISTINCT FROM OLD.request_id
            OR OLD.stage <> 'pre') THEN
        PERFORM refresh_pre_outcomes(NEW.request_id);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER decisions_outcomes
    AFTER INSERT OR DELETE OR UPDATE OF request_id, stage, chosen_arm, created_at ON decisions
    FOR EACH ROW EXECUTE FUNCTION decisions_refresh_outcomes();

CREATE FUNCTION rewards_refresh_outcomes() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    rid uuid;
BEGIN
    IF TG_OP <> 'INSERT' THEN
        SELECT d.request_id INTO rid FROM decisions AS d
        WHERE d.id = OLD.decision_id AND d.stage = 'pre';
        IF rid IS NOT NULL THEN
            PERFORM refresh_pre_outcomes(rid);
        END IF;
    END IF;
    IF TG_OP <> 'DELETE' AND (TG_OP = 'INSERT' OR NEW.decision_id <> OLD.decision_id) THEN
        SELECT d.request_id INTO rid FROM decisions AS d
        WHERE d.id = NEW.decision_id AND d.stage = 'pre';
        IF rid IS NOT NULL THEN
            PERFORM refresh_pre_outcomes(rid);
        END IF;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER rewards_outcomes
    AFTER INSERT OR DELETE OR UPDATE OF decision_id, value, counted ON rewards
    FOR EACH ROW EXECUTE FUNCTION rewards_refresh_outcomes();

-- Rows stored before this migration.
UPDATE query_embeddings AS q
SET (pre_decision_ids, pre_arms, pre_rewards, pre_decided_at) =
    (SELECT o.ids, o.arms, o.rewards, o.decided_at FROM pre_outcomes(q.request_id) AS o);
