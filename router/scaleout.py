"""``signalroute learner``: the one process that learns, when routers run as replicas.

Replicas (``SIGNALROUTE_ROLE=replica``) route with the newest policy snapshot, log every
decision and reward, and learn nothing themselves. The learner reads the logged rewards in
order (those no policy update has claimed yet), learns each exactly once (marking it with its
update number, in the same transaction discipline as a standalone service's restart), and
publishes a snapshot whenever ``snapshot_every`` updates or ``publish_every_s`` seconds have
passed with news. Replicas poll for it every ``SIGNALROUTE_POLICY_REFRESH_S``; each decision
logs the policy version it used, so its propensity stays valid whoever learned.
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import AsyncExitStack, suppress

from features.errors import SignalrouteError
from router.policies import PolicyRegistry
from router.runtime import open_database, policy_configs
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
            database, policy_configs(settings), snapshot_every=settings.snapshot_every
        )
        await policies.load()
        stack.push_async_callback(policies.close)
        published = {stage: time.monotonic() for stage in policies.stages}
        pending = dict.fromkeys(policies.stages, 0)
        stop = stop or asyncio.Event()
        log.info("learner: following the reward log of %s", ", ".join(policies.stages))
        while not stop.is_set():
            for stage in policies.stages:
                try:
                    learned = await policies.learn_logged(stage)
                    pending[stage] += learned
                    late = time.monotonic() - published[stage] >= publish_every_s
                    if pending[stage] >= settings.snapshot_every or (pending[stage] and late):
                        version = await policies.snapshot(stage)
                        log.info(
                            "learner: %s learned %d rewards, published snapshot v%s",
                            stage,
                            pending[stage],
                            version,
                        )
                        pending[stage] = 0
                        published[stage] = time.monotonic()
                except SignalrouteError as exc:
                    log.warning("learner: %s: %s (retrying)", stage, exc.message)
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=poll_s)
