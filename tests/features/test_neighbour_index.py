"""The in-memory neighbour index: exact cosine top-k in a scope, outcomes in the store's
order, fixed memory holding the most recent rows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from features.neighbour_index import NeighbourIndex, PastDecision

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DIM = 8


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def unit(*coordinates: float) -> np.ndarray[Any, np.dtype[np.float32]]:
    vector = np.zeros(DIM, dtype=np.float32)
    vector[: len(coordinates)] = coordinates
    return vector


def decision(arm: str, reward: float | None = None, seconds: float = 0.0) -> PastDecision:
    return PastDecision(uuid.uuid4(), arm, reward, at(seconds))


def test_the_nearest_rows_of_the_scope_come_first_with_cosine_distances() -> None:
    index = NeighbourIndex(16, DIM)
    index.put("a", tenant="t", user_id="u1", embedding=unit(1, 0), stored_at=at(1),
              decisions=[decision("small", 1.0)])  # fmt: skip
    index.put("b", tenant="t", user_id="u2", embedding=unit(3, 3), stored_at=at(2),
              decisions=[decision("large", 0.5)])  # fmt: skip
    index.put("c", tenant="t", user_id="u1", embedding=unit(0, 2), stored_at=at(3),
              decisions=[decision("code")])  # fmt: skip
    index.put("x", tenant="other", user_id="u1", embedding=unit(1, 0), stored_at=at(4),
              decisions=[decision("small")])  # fmt: skip

    rows = index.outcomes(unit(2, 0), k=3, tenant="t")
    assert [(r.request_id, r.arm, r.reward) for r in rows] == [
        ("a", "small", 1.0),
        ("b", "large", 0.5),
        ("c", "code", None),
    ]
    assert [r.distance for r in rows] == pytest.approx([0.0, 1 - 2**-0.5, 1.0], abs=1e-6)
    assert [r.request_id for r in index.outcomes(unit(2, 0), k=2, tenant="t")] == ["a", "b"]
    assert [r.request_id for r in index.outcomes(unit(0, 1), k=5, tenant="t", user_id="u1")] == [
        "c",
        "a",
    ]
    assert [
        r.request_id for r in index.outcomes(unit(1, 0), k=5, tenant="t", exclude_request_id="a")
    ] == ["b", "c"]
    assert index.outcomes(unit(1, 0), k=5, tenant="nobody") == []
    assert index.outcomes(unit(1, 0), k=5, tenant="t", user_id="nobody") == []
    assert index.outcomes(unit(1, 0), k=0, tenant="t") == []


@pytest.mark.parametrize("tenants", [1, 3])
@pytest.mark.parametrize("k", [1, 5, 40, 200])
def test_every_scope_gets_the_same_k_nearest_as_a_full_comparison(tenants: int, k: int) -> None:
    """One tenant alone (no mask is built), several; a user; an excluded row; k below and
    above the scope's size: the k nearest, as comparing the probe with every row finds them."""
    rng = np.random.default_rng(tenants * 1000 + k)
    index = NeighbourIndex(120, DIM)
    held: list[tuple[str, str, str, np.ndarray[Any, np.dtype[np.float64]]]] = []
    for n in range(120):
        vector = rng.standard_normal(DIM)
        tenant, user = f"t{n % tenants}", f"u{n % 4}"
        index.put(f"r{n}", tenant=tenant, user_id=user, embedding=vector.astype(np.float32),
                  stored_at=at(n), decisions=[decision("a")])  # fmt: skip
        held.append((f"r{n}", tenant, user, vector / np.linalg.norm(vector)))
    probe = rng.standard_normal(DIM)
    scopes: list[tuple[str | None, str | None]] = [
        (None, None), ("u1", None), (None, "r0"), ("u0", "r0")
    ]  # fmt: skip
    for scope_user, excluded in scopes:
        rows = index.outcomes(
            probe.astype(np.float32),
            k=k,
            tenant="t0",
            user_id=scope_user,
            exclude_request_id=excluded,
        )
        scope = [
            (1.0 - float(vector @ probe) / float(np.linalg.norm(probe)), request_id)
            for request_id, tenant, owner, vector in held
            if tenant == "t0" and scope_user in (None, owner) and request_id != excluded
        ]
        assert [r.request_id for r in rows] == [request_id for _, request_id in sorted(scope)[:k]]


@pytest.mark.parametrize("tenants", [1, 3])
def test_scopes_from_one_comparison_are_each_scope_looked_up_alone(tenants: int) -> None:
    """The tenant and a user from one comparison, in either order (the narrower scope masks
    rows the wider one needs), with an unknown user and an excluded row."""
    rng = np.random.default_rng(tenants)
    index = NeighbourIndex(200, DIM)
    for n in range(200):
        index.put(f"r{n}", tenant=f"t{n % tenants}", user_id=f"u{n % 5}",
                  embedding=rng.standard_normal(DIM).astype(np.float32), stored_at=at(n),
                  decisions=[decision("a", seconds=n)])  # fmt: skip
    probe = rng.standard_normal(DIM).astype(np.float32)
    for users in ((None, "u1"), ("u1", None), ("u2", "nobody", None)):
        for excluded in (None, "r0"):
            alone = [
                index.outcomes(probe, k=7, tenant="t0", user_id=user, exclude_request_id=excluded)
                for user in users
            ]
            together = index.scoped_outcomes(
                probe, k=7, tenant="t0", users=users, exclude_request_id=excluded
            )
            assert together == alone
            assert all(len(rows) == (0 if user == "nobody" else 7)
                       for user, rows in zip(users, together, strict=True))  # fmt: skip
    assert index.scoped_outcomes(probe, k=7, tenant="nobody", users=(None, "u1")) == [[], []]


def test_a_neighbour_without_decisions_takes_a_place_and_yields_no_row() -> None:
    index = NeighbourIndex(4, DIM)
    index.put("bare", tenant="t", user_id=None, embedding=unit(1, 0), stored_at=at(1),
              decisions=[])  # fmt: skip
    index.put("far", tenant="t", user_id=None, embedding=unit(0, 1), stored_at=at(2),
              decisions=[decision("small")])  # fmt: skip
    assert index.outcomes(unit(1, 0), k=1, tenant="t") == []
    assert [r.request_id for r in index.outcomes(unit(1, 0), k=2, tenant="t")] == ["far"]


def test_several_decisions_come_in_decision_time_order() -> None:
    index = NeighbourIndex(4, DIM)
    late, early = decision("large", 0.2, seconds=5), decision("small", None, seconds=1)
    index.put("r", tenant="t", user_id=None, embedding=unit(1), stored_at=at(1),
              decisions=[late, early])  # fmt: skip
    rows = index.outcomes(unit(1), k=1, tenant="t")
    assert [(r.arm, r.created_at) for r in rows] == [("small", at(1)), ("large", at(5))]


def test_putting_a_held_row_again_replaces_its_outcomes() -> None:
    index = NeighbourIndex(4, DIM)
    index.put("r", tenant="t", user_id=None, embedding=unit(1), stored_at=at(1),
              decisions=[decision("small")])  # fmt: skip
    index.put("r", tenant="t", user_id=None, embedding=unit(1), stored_at=at(1),
              decisions=[decision("small", 0.75)])  # fmt: skip
    assert len(index) == 1
    assert [r.reward for r in index.outcomes(unit(1), k=5, tenant="t")] == [0.75]


def test_a_full_index_keeps_the_most_recent_rows() -> None:
    rng = np.random.default_rng(0)
    index = NeighbourIndex(10, DIM)
    for seconds in rng.permutation(40).tolist():  # arriving in any order
        index.put(f"r{seconds}", tenant="t", user_id=f"u{seconds}",
                  embedding=rng.normal(size=DIM).astype(np.float32),
                  stored_at=at(seconds), decisions=[decision("small")])  # fmt: skip
    newest = {f"r{s}" for s in range(30, 40)}
    assert len(index) == 10
    assert {r.request_id for r in index.outcomes(unit(1), k=40, tenant="t")} == newest
    assert not index.put("old", tenant="t", user_id=None, embedding=unit(1), stored_at=at(0),
                         decisions=[])  # fmt: skip
    assert "old" not in index
    assert index.outcomes(unit(1), k=40, tenant="t", user_id="u3") == []  # evicted, forgotten
    assert [r.request_id for r in index.outcomes(unit(1), k=40, tenant="t", user_id="u33")] == [
        "r33"
    ]


def test_memory_is_allocated_once_and_names_are_released() -> None:
    index = NeighbourIndex(1000, DIM)
    before = index.nbytes
    for n in range(5000):
        index.put(n, tenant=f"t{n}", user_id=f"u{n}", embedding=unit(1, n % 7),
                  stored_at=at(n), decisions=[decision("small")])  # fmt: skip
    assert index.nbytes == before
    assert len(index) == 1000
    assert index.names_held == 2000  # the held rows' tenants and users, no more


def test_bad_input_is_refused_by_name() -> None:
    index = NeighbourIndex(2, DIM)
    with pytest.raises(ValueError, match="not all zero"):
        index.put("z", tenant="t", user_id=None, embedding=unit(), stored_at=at(0), decisions=[])
    with pytest.raises(ValueError, match="k must be >= 0"):
        index.outcomes(unit(1), k=-1, tenant="t")
    with pytest.raises(ValueError, match="probe"):
        index.outcomes(np.ones(3, dtype=np.float32), k=1, tenant="t")
    with pytest.raises(ValueError, match="capacity"):
        NeighbourIndex(0, DIM)
