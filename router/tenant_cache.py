"""The tenants whose policies a process holds in memory, least recently used first out.

Pure bookkeeping: the registry (``router.policies``) loads a tenant's state into the cache,
pins it while a request uses it, and snapshots and frees what ``excess`` hands back.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from learner.anchor import Evidence
from learner.vw_policy import VWPolicy


@dataclass
class TenantState:
    """What a process holds of one isolated tenant."""

    tenant: str
    own: dict[str, VWPolicy] = field(default_factory=dict)
    """Its own policy per stage; a stage without one is served by the prior."""
    counts: dict[str, int] = field(default_factory=dict)
    """Counted rewards per stage served by the prior (its own policy starts at ``min``)."""
    evidence: dict[str, Evidence] = field(default_factory=dict)
    """Anchoring evidence per stage, gathered from this tenant's rewards only."""
    relearned: dict[int, tuple[str, int]] = field(default_factory=dict)
    """Reward id -> (policy name, update) of the logged rewards learned when its policies
    were restored or created: a reward among them is not learned a second time."""
    pins: int = 0
    """Requests using it now: a pinned tenant is never evicted."""

    def close(self) -> None:
        for policy in self.own.values():
            policy.close()
        self.own.clear()


class TenantCache:
    """Tenant states in least-recently-used order, bounded by the number of own policies
    held and the number of tenants."""

    def __init__(self, *, max_policies: int, max_tenants: int) -> None:
        self._max_policies = max_policies
        self._max_tenants = max_tenants
        self._states: OrderedDict[str, TenantState] = OrderedDict()
        self._policies = 0

    def get(self, tenant: str) -> TenantState | None:
        """The tenant's state, now the most recently used; None when not held."""
        state = self._states.get(tenant)
        if state is not None:
            self._states.move_to_end(tenant)
        return state

    def peek(self, tenant: str) -> TenantState | None:
        """The tenant's state without touching its place in the order."""
        return self._states.get(tenant)

    def put(self, state: TenantState) -> None:
        old = self._states.get(state.tenant)
        self._policies += len(state.own) - (0 if old is None else len(old.own))
        self._states[state.tenant] = state
        self._states.move_to_end(state.tenant)

    def adopt(self, state: TenantState, stage: str, policy: VWPolicy) -> VWPolicy | None:
        """Make ``policy`` the tenant's own at ``stage`` (counted when the state is held);
        returns the policy it replaces, for the caller to close."""
        old = state.own.get(stage)
        state.own[stage] = policy
        if old is None and self._states.get(state.tenant) is state:
            self._policies += 1
        return old

    def __len__(self) -> int:
        return len(self._states)

    def states(self) -> list[TenantState]:
        return list(self._states.values())

    def resident_policies(self) -> int:
        """Own policies held in memory, over every tenant."""
        return self._policies

    def excess(self) -> list[TenantState]:
        """Remove and return the least recently used unpinned states while a bound is
        exceeded (pinned ones stay, so a bound may be exceeded while they are in use); over
        the policy bound only, a state without an own policy stays (it frees none)."""
        victims: list[TenantState] = []
        policies = self.resident_policies()
        for tenant in list(self._states):
            too_many_tenants = len(self._states) > self._max_tenants
            if policies <= self._max_policies and not too_many_tenants:
                break
            state = self._states[tenant]
            if state.pins or (not state.own and not too_many_tenants):
                continue  # in use, or evicting it would free no policy
            del self._states[tenant]
            policies -= len(state.own)
            victims.append(state)
        self._policies = policies
        return victims
