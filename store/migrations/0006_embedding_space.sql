-- Which embedder wrote the stored query embeddings. Vectors of two embedders share a
-- dimension but not a meaning, so a store holds one embedder's vectors only (see
-- store.embeddings.claim_embedder). A store that already holds embeddings got them from the
-- hashing embedder, the only one before this migration.
CREATE TABLE embedding_space (
    singleton  boolean PRIMARY KEY DEFAULT true
               CONSTRAINT embedding_space_one_row CHECK (singleton),
    embedder   text NOT NULL,
    claimed_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

INSERT INTO embedding_space (embedder)
SELECT 'hashing' WHERE EXISTS (SELECT 1 FROM query_embeddings);
