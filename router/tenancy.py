"""Whose rewards a tenant's routing learns from: its own (isolated), or every sharing tenant's.

With API keys (``SIGNALROUTE_AUTH=keys``) each tenant is isolated by default: at every stage
it is served by a frozen *prior* (never updated by anyone's rewards) until it has
``min_rewards`` counted rewards of its own there, then by its *own* policy, which starts as a
copy of the prior and learns only that tenant's rewards. What one tenant sends therefore
cannot move another tenant's routing. Tenants named in ``shared_tenants`` (``*``: all of
them), and every tenant of local mode, share the stage's *shared* policy instead, as before
tenants existed.

Each policy has a name: the name its snapshots are saved under, the ``policy_name`` its
decisions log (with its update count as ``policy_version``), and the ``policy_name`` of the
rewards it learned. Stage names never contain ``:``, so the three kinds cannot collide.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ALL_TENANTS = "*"
"""In ``shared_tenants``: every tenant shares the stage's policy."""


def shared_name(stage: str) -> str:
    """The name of a stage's shared policy: the stage itself."""
    return stage


def prior_name(stage: str) -> str:
    """The name of a stage's frozen prior (decisions drawn from it log it)."""
    return f"{stage}:prior"


def tenant_name(stage: str, tenant: str) -> str:
    """The name of a tenant's own policy of a stage."""
    return f"{stage}:tenant:{tenant}"


@dataclass(frozen=True)
class Tenancy:
    """How the policies of a process are split between tenants.

    ``isolated`` False (the default, and local mode) shares each stage's policy between all
    tenants. ``prior_version`` pins the shared policy's snapshot version new tenants start
    from (None: a cold policy). ``max_resident_policies`` bounds the tenants' own policies
    held in memory (each is a VW workspace of several MB); ``max_tenants`` bounds the
    tenants whose state (reward counts, anchoring evidence) is held. Beyond either bound
    the least recently used tenant is evicted: its policies are snapshotted and freed, and
    restored from their snapshots on its next request.
    """

    isolated: bool = False
    shared_tenants: frozenset[str] = field(default_factory=frozenset)
    min_rewards: int = 50
    max_resident_policies: int = 64
    max_tenants: int = 4096
    prior_version: int | None = None
    snapshots_kept: int = 3
    """Versions kept of each tenant's own policy (older ones are deleted as new ones are
    saved), so the store holds at most this many per tenant and stage."""

    def __post_init__(self) -> None:
        if self.min_rewards < 0:
            raise ValueError("min_rewards must be >= 0")
        if min(self.max_resident_policies, self.max_tenants, self.snapshots_kept) < 1:
            raise ValueError("max_resident_policies, max_tenants and snapshots_kept must be >= 1")

    def shares(self, tenant: str | None) -> bool:
        """Whether ``tenant`` (None: no tenant, e.g. an operator's tool) uses the shared
        policies."""
        return (
            not self.isolated
            or tenant is None
            or ALL_TENANTS in self.shared_tenants
            or tenant in self.shared_tenants
        )

    def sharing(self) -> list[str] | None:
        """The tenants whose rewards the shared policies learn (None: every tenant)."""
        if not self.isolated or ALL_TENANTS in self.shared_tenants:
            return None
        return sorted(self.shared_tenants)


SHARED = Tenancy()
"""Every tenant shares each stage's policy (local mode, tools, benchmarks)."""
