"""Small builders of valid rows, so each test states only what it is about."""

from __future__ import annotations

from typing import Any

import numpy as np
from psycopg import AsyncConnection

from store import decisions, requests
from store.records import EMBEDDING_DIM, DecisionRecord, Embedding, RequestRecord


async def a_request(conn: AsyncConnection[Any], **overrides: Any) -> RequestRecord:
    """A logged request with one user message; keyword arguments override fields."""
    fields: dict[str, Any] = {
        "messages": [{"role": "user", "content": "What is 2 + 2?"}],
        "params": {"temperature": 0.2},
        **overrides,
    }
    return await requests.insert_request(conn, **fields)


async def a_decision(
    conn: AsyncConnection[Any], request_id: Any, **overrides: Any
) -> DecisionRecord:
    """A valid 'pre' decision choosing 'small' of two arms; keyword arguments override."""
    fields: dict[str, Any] = {
        "request_id": request_id,
        "stage": "pre",
        "context": {"query_length": 14.0, "category": "math"},
        "arms": ["small", "large"],
        "chosen_arm": "small",
        "probability": 0.8,
        "pmf": {"small": 0.8, "large": 0.2},
        "policy_name": "vw-cb",
        "policy_version": 3,
        **overrides,
    }
    return await decisions.insert_decision(conn, **fields)


def unit(*coordinates: float) -> Embedding:
    """An embedding whose first coordinates are given and the rest zero, normalised."""
    vector = np.zeros(EMBEDDING_DIM, dtype=np.float32)
    vector[: len(coordinates)] = coordinates
    return (vector / np.linalg.norm(vector)).astype(np.float32)
