"""``signalroute bench-tenants``: memory and snapshot size of isolated tenants' policies.

A policy registry as keys mode builds it (``router.tenancy``: one frozen prior per stage, each
tenant's own policy once it has ``--min-rewards`` rewards at a stage, at most
``--resident`` own policies in memory) learns rewards from ``--tenants`` tenants whose traffic
follows a Zipf law (a few busy tenants, a long tail of quiet ones), against a fresh embedded
Postgres. Every reward goes to the pre-generation stage, and one in three to the escalation
stage as well. Contexts are synthetic but shaped like the service's (a query namespace of
24 features, a historical one of 8, one action namespace per arm of an 11-arm pool), so the
models hold as many weights as real ones of the same traffic.

Printed (and written as JSON with ``--json``): the process's resident memory before the
tenants and at the end, its peak, the own policies held, the tenants that have their own
policy, the bytes of the tenants' newest snapshots and of every version kept, and what
restoring a tenant's policies takes when the tenants with their own policies are visited in
turn (beyond the bound, each visit restores the tenant's policies from their snapshots).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import numpy as np

from learner.context import ArmFeatures, Context
from router.lifecycle.stages import ESCALATION, PRE_GENERATION
from router.policies import PolicyRegistry
from router.runtime import policy_configs
from router.settings import Settings
from router.tenancy import Tenancy
from store import snapshots
from store.database import Database
from store.embedded import EmbeddedPostgres

ARMS = tuple(f"arm-{i}" for i in range(11))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tenants", type=int, default=1000, help="tenants sending rewards")
    parser.add_argument("--rewards", type=int, default=50_000, help="rewards over all tenants")
    parser.add_argument("--min-rewards", type=int, default=50, help="rewards to own a policy")
    parser.add_argument("--resident", type=int, default=64, help="own policies held in memory")
    parser.add_argument("--zipf", type=float, default=1.1, help="exponent of the traffic law")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the figures here")


def rss_mb() -> float:
    """The process's resident memory now (Linux), else its peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return peak_rss_mb()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def traffic(tenants: int, rewards: int, exponent: float, rng: np.random.Generator) -> list[int]:
    """The tenant of each reward, in arrival order: tenant i sends in proportion to
    1 / (i + 1) ** exponent."""
    weights = 1.0 / np.arange(1, tenants + 1) ** exponent
    return [int(t) for t in rng.choice(tenants, size=rewards, p=weights / weights.sum())]


def a_context(rng: np.random.Generator) -> Context:
    shared = {
        "Q": {f"q{i}": float(v) for i, v in enumerate(rng.random(24))},
        "H": {f"h{i}": float(v) for i, v in enumerate(rng.random(8))},
    }
    return Context(shared=shared, arms=tuple(ArmFeatures(a, {"A": {"arm": a}}) for a in ARMS))


async def measure(database: Database, args: argparse.Namespace) -> dict[str, Any]:
    settings = Settings()
    configs = policy_configs(settings)
    tenancy = Tenancy(
        isolated=True,
        min_rewards=args.min_rewards,
        max_resident_policies=args.resident,
        max_tenants=max(args.tenants, 1),
    )
    rng = np.random.default_rng(args.seed)
    contexts = [a_context(rng) for _ in range(200)]
    order = traffic(args.tenants, args.rewards, args.zipf, rng)
    start_mb = rss_mb()
    policies = PolicyRegistry(
        database, configs, snapshot_every=settings.snapshot_every, tenancy=tenancy
    )
    await policies.load()
    loaded_mb = rss_mb()
    started = time.perf_counter()
    for index, tenant in enumerate(order):
        name = f"tenant-{tenant}"
        context = contexts[index % len(contexts)]
        arm = ARMS[index % len(ARMS)]
        reward = float(rng.random())
        await policies.learn_for(name, PRE_GENERATION, context, arm, 1 / len(ARMS), reward)
        if index % 3 == 0:
            await policies.learn_for(name, ESCALATION, context, arm, 1 / len(ARMS), reward)
    learn_s = time.perf_counter() - started
    held_tenants, held_policies = policies.resident()
    end_mb = rss_mb()
    counts = np.bincount(order, minlength=args.tenants)
    # Restoring evicted tenants: every tenant with its own policy, in turn, twice; beyond the
    # bound each one was evicted since its last turn (an LRU's worst case).
    owners = [t for t in range(args.tenants) if counts[t] >= args.min_rewards]
    restores = []
    for tenant in owners * 2:
        began = time.perf_counter()
        async with policies.pinned(f"tenant-{tenant}"):
            restores.append((time.perf_counter() - began) * 1000)
    await policies.close()
    async with database.connection() as conn:
        own = await snapshots.footprint(conn, "%:tenant:%")
        shared = await snapshots.footprint(conn, PRE_GENERATION)
    return {
        "tenants": args.tenants,
        "rewards": args.rewards,
        "min_rewards": args.min_rewards,
        "resident_bound": args.resident,
        "busiest_tenant_rewards": int(counts.max()),
        "median_tenant_rewards": float(np.median(counts)),
        "tenants_over_min_rewards": int((counts >= args.min_rewards).sum()),
        "own_policies_snapshotted": own.policies,
        "own_policies_held_at_end": held_policies,
        "tenants_held_at_end": held_tenants,
        "rss_mb_before": round(start_mb, 1),
        "rss_mb_after_load": round(loaded_mb, 1),
        "rss_mb_at_end": round(end_mb, 1),
        "rss_mb_peak": round(peak_rss_mb(), 1),
        "own_snapshot_bytes_newest": own.model_bytes,
        "own_snapshot_bytes_all_versions": own.all_versions_bytes,
        "own_snapshot_bytes_per_policy": round(own.model_bytes / max(own.policies, 1)),
        "shared_pre_snapshot_bytes": shared.model_bytes,
        "learn_us_per_reward": round(learn_s / (args.rewards * 4 / 3) * 1e6, 1),
        "restore_ms_p50": round(float(np.percentile(restores, 50)), 2) if restores else None,
        "restore_ms_p99": round(float(np.percentile(restores, 99)), 2) if restores else None,
    }


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        embedded = EmbeddedPostgres()
        url = await asyncio.to_thread(embedded.start, Path(folder) / "data")
        try:
            async with AsyncExitStack() as stack:
                database = await Database.connect(url)
                stack.push_async_callback(database.close)
                return await measure(database, args)
        finally:
            embedded.stop()


def run(args: argparse.Namespace) -> int:
    figures = asyncio.run(_run(args))
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        print(f"{key:<{width}}  {value}")
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
        print(f"wrote {args.json}", file=sys.stderr)
    return 0
