"""Persistence: Postgres with pgvector. Every SQL statement of signalroute lives here.

* ``store.embedded``: ``EmbeddedPostgres``, the server used when no database URL is set.
* ``store.database``: ``Database``, the connection pool (migrates and checks on connect).
* ``store.migrations``: versioned schema migrations (``store/migrations/*.sql``).
* ``store.requests``, ``store.decisions``, ``store.rewards``, ``store.embeddings``,
  ``store.snapshots``, ``store.api_keys``: async record functions taking the caller's
  connection, so the caller decides the transaction; they return the frozen values of
  ``store.records``.
* ``store.activity``: recent activity for the dashboard (decisions over time, latest
  requests, spend).

Every failure leaves as a ``features.errors`` exception (see ``store.translation``).
"""

from store.records import EMBEDDING_DIM

__all__ = ["EMBEDDING_DIM"]
