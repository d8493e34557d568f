-- 0010: a change marker on each query embedding, so that a process holding recent embeddings
-- in memory (router.history_index) can read what changed since it last looked: new rows, and
-- rows whose carried outcomes a trigger refreshed (migration 0013).
--
-- change_xact: the id of the transaction that last inserted or updated the row
-- (pg_current_xact_id(), 64 bits: it never wraps). A transaction id, not a sequence number,
-- because readers poll by commit: a row committed after a reader's snapshot was written by a
-- transaction whose id is at least that snapshot's xmin, so reading the rows with
-- change_xact >= the previous poll's xmin misses none (a sequence taken before a slower
-- transaction commits would be skipped). 0 for rows written before this migration.
-- The trigger fires on every insert and update, whichever statement or trigger writes the row.
ALTER TABLE query_embeddings ADD COLUMN change_xact bigint NOT NULL DEFAULT 0;

CREATE FUNCTION query_embeddings_mark_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.change_xact := pg_current_xact_id()::text::bigint;
    RETURN NEW;
END;
$$;

CREATE TRIGGER query_embeddings_change
    BEFORE INSERT OR UPDATE ON query_embeddings
    FOR EACH ROW EXECUTE FUNCTION query_embeddings_mark_change();

CREATE INDEX query_embeddings_change_idx ON query_embeddings (change_xact);
