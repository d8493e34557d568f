"""Who shares the stage policies, and the names policies are logged and saved under."""

import pytest

from router.tenancy import SHARED, Tenancy, prior_name, shared_name, tenant_name


def test_local_mode_shares_everything() -> None:
    assert SHARED.shares("acme")
    assert SHARED.sharing() is None


def test_keys_mode_isolates_every_tenant_but_those_opted_in() -> None:
    tenancy = Tenancy(isolated=True, shared_tenants=frozenset({"pooled", "team"}))
    assert not tenancy.shares("acme")
    assert tenancy.shares("pooled")
    assert tenancy.shares(None)  # no tenant: an operator's tool uses the shared policies
    assert tenancy.sharing() == ["pooled", "team"]
    everyone = Tenancy(isolated=True, shared_tenants=frozenset({"*"}))
    assert everyone.shares("acme")
    assert everyone.sharing() is None


def test_policy_names_cannot_collide() -> None:
    names = {shared_name("pre"), prior_name("pre"), tenant_name("pre", "prior")}
    assert names == {"pre", "pre:prior", "pre:tenant:prior"}


@pytest.mark.parametrize(
    "bad",
    [{"min_rewards": -1}, {"max_resident_policies": 0}, {"max_tenants": 0}, {"snapshots_kept": 0}],
)
def test_bounds_are_checked(bad: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="must be"):
        Tenancy(isolated=True, **bad)  # type: ignore[arg-type]
