"""``signalroute serve --workers N``: N uvicorn worker processes sharing one listening socket,
and one learner process that learns for all of them.

uvicorn starts each worker from an import string, so every worker builds its own app with
``router.app:app_from_env`` from the environment. The parent process therefore hands the
command-line overrides to the workers as ``SIGNALROUTE_*`` variables, checks the pool file
once (a bad file stops it with one line instead of N tracebacks), and, when no database URL
is set, starts the embedded Postgres itself so that the workers share one server instead of
racing to start it.

Exactly one process may learn: a reward is learned once, as the update number it is marked
with, and a restart re-learns what came after the newest snapshot (``router.scaleout``). So
the workers run as replicas (``SIGNALROUTE_ROLE=replica``: they route with the newest
snapshot and log every decision and reward) and the parent starts ``signalroute learner``
beside them, which learns every logged reward and publishes snapshots the workers adopt
within ``SIGNALROUTE_POLICY_REFRESH_S``. When the environment already says
``SIGNALROUTE_ROLE=replica`` a learner runs elsewhere, and none is started.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import uvicorn

from router.pool import load_pool
from router.server_protocol import http_protocol
from router.settings import Settings
from store.embedded import EmbeddedPostgres

log = logging.getLogger("signalroute")

APP_FACTORY = "router.app:app_from_env"
"""What each worker imports and calls to build its app."""


def worker_environment(settings: Settings, database_url: str | None) -> dict[str, str]:
    """The variables that give each worker the parent's settings (its CLI overrides); the
    workers are replicas of one learner."""
    env = {
        "SIGNALROUTE_HOST": settings.host,
        "SIGNALROUTE_PORT": str(settings.port),
        "SIGNALROUTE_ROLE": "replica",
    }
    if settings.pool_config is not None:
        env["SIGNALROUTE_POOL_CONFIG"] = str(settings.pool_config.resolve())
    if database_url is not None:
        env["SIGNALROUTE_DATABASE_URL"] = database_url
    return env


def serve_workers(settings: Settings, workers: int) -> None:
    """Run ``workers`` worker processes (and a learner) until interrupted (blocks).

    Raises ConfigError for a bad pool file and StoreUnavailableError when the embedded
    database cannot start, before any worker starts. The workers' variables are set in this
    process's environment, which they and the learner inherit.
    """
    if settings.pool_config is not None:
        load_pool(settings.pool_config)
    embedded: EmbeddedPostgres | None = None
    database_url = settings.database_url
    if database_url is None:
        embedded = EmbeddedPostgres()
        database_url = embedded.start(settings.data_dir)
        log.info("embedded Postgres started under %s", settings.data_dir.resolve())
    learner: subprocess.Popen[bytes] | None = None
    try:
        os.environ.update(worker_environment(settings, database_url))
        if settings.role == "standalone":
            learner = subprocess.Popen([sys.executable, "-m", "router.cli", "learner"])
        log.info("starting %d workers on %s:%d", workers, settings.host, settings.port)
        uvicorn.run(
            APP_FACTORY,
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=workers,
            log_level=settings.log_level,
            lifespan="on",
            log_config=None,  # each worker configures logging in app_from_env
            access_log=False,
            timeout_keep_alive=settings.keep_alive_s,
            http=http_protocol(settings),
        )
    finally:
        if learner is not None:
            learner.terminate()
            try:
                learner.wait(timeout=30)
            except subprocess.TimeoutExpired:
                learner.kill()
        if embedded is not None:
            embedded.stop()
