"""Persistence: Postgres with pgvector. Every SQL statement of signalroute lives here."""
