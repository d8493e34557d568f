"""The tenant cache evicts the least recently used tenants that free something, never a
pinned one."""

from learner.config import PolicyConfig
from learner.vw_policy import VWPolicy
from router.tenant_cache import TenantCache, TenantState


def owning(tenant: str, policies: int) -> TenantState:
    state = TenantState(tenant)
    for index in range(policies):
        state.own[f"stage{index}"] = VWPolicy(f"{tenant}{index}", PolicyConfig())
    return state


def test_the_least_recently_used_owners_go_first_until_the_policies_fit() -> None:
    cache = TenantCache(max_policies=3, max_tenants=100)
    for state in (owning("a", 2), owning("b", 1), owning("quiet", 0), owning("c", 2)):
        cache.put(state)
    assert cache.get("a") is not None  # a is the most recently used now

    victims = cache.excess()

    assert [v.tenant for v in victims] == ["b", "c"]  # "quiet" frees nothing: it stays
    assert cache.resident_policies() == 2
    assert cache.peek("quiet") is not None
    for victim in victims:
        victim.close()
    cache.get("a").close()  # type: ignore[union-attr]


def test_a_pinned_tenant_stays_even_over_the_bound() -> None:
    cache = TenantCache(max_policies=1, max_tenants=100)
    busy = owning("busy", 2)
    busy.pins = 1
    cache.put(busy)

    assert cache.excess() == []
    assert cache.resident_policies() == 2
    busy.pins = 0
    assert [v.tenant for v in cache.excess()] == ["busy"]
    busy.close()


def test_over_the_tenant_bound_quiet_tenants_go_too() -> None:
    cache = TenantCache(max_policies=10, max_tenants=2)
    for tenant in ("a", "b", "c"):
        cache.put(owning(tenant, 0))

    assert [v.tenant for v in cache.excess()] == ["a"]
    assert len(cache) == 2
