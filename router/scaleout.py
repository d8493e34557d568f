"""``signalroute learner``: the one process that learns, when routers run as replicas.

Replicas (``SIGNALROUTE_ROLE=replica``) route with the newest policy snapshot, log every
decision and reward, and learn nothing themselves. The learner reads the logged rewards in
order (those no policy update has claimed yet), learns each exactly once (marking it with its
update number, in the same transaction discipline as a standalone service's restart), and
publishes a snapshot whenever ``snapshot_every`` updates or ``publish_every_s`` seconds have
passed with news. Each reward goes to the policy its tenant learns with (``router.tenancy``):
the shared one, the tenant's own (published under its own name), or none yet (held for the
tenant's own policy, which the learner creates once the tenant has enough rewards).
Replicas poll for new snapshots every ``SIGNALROUTE_POLICY_REFRESH_S``; each decision logs
the policy (name and version) it used, so its propensity stays valid whoever learned.
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import AsyncExitStack, suppress

from features.errors import SignalrouteError
from router.policies import PolicyRegistry
from router.runtime import open_database, policy_configs, tenancy
from router.settings import Settings

log = logging.getLogger("signalroute.learner")


async def learn_forever(
    settings: Settings,
    *,
    poll_s: float = 0.5,
    publish_every_s: float = 2.0,
    stop: asyncio.Event | None = None,
) -> None:
    """Learn logged rewards as they arrive and publish snapshots, until ``stop`` is set."""
    async with AsyncExitStack() as stack:
        database = await open_database(settings, stack)
        policies = PolicyRegistry(
            database,
            policy_configs(settings),
            snapshot_every=settings.snapshot_every,
            tenancy=tenancy(settings),
        )
        await policies.load()
        stack.push_async_callback(policies.close)
        published = time.monotonic()
        pending = 0
        stop = stop or asyncio.Event()
        log.info("learner: following the reward log of %s", ", ".join(policies.stages))
        while not stop.is_set():
            try:
                taken = await policies.learn_unlearned()
                pending += taken
                late = time.monotonic() - published >= publish_every_s
                if pending >= settings.snapshot_every or (pending and late):
                    saved = await policies.snapshot_all()
                    log.info(
                        "learner: took %d rewards, published %s",
                        pending,
                        ", ".join(f"{name} v{version}" for name, version in saved.items())
                        or "no new snapshot",
                    )
                    pending = 0
                    published = time.monotonic()
                if taken:
                    continue  # more may be waiting: no pause
            except SignalrouteError as exc:
                log.warning("learner: %s (retrying)", exc.message)
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=poll_s)
