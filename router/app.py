"""``create_app(settings)``: the router service as an ASGI application.

Nothing happens at import. Building the app validates the pool (and loads the replay data when
the demo pool is used); the lifespan opens the store, the HTTP client and the providers.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI
from opentelemetry.trace import Tracer

from features.errors import SignalrouteError
from router import dashboard
from router.api import chat, health, policies, route
from router.api import metrics as metrics_api
from router.api.errors import install_error_handlers
from router.api.limits import BodyLimitMiddleware
from router.api.middleware import RequestContextMiddleware
from router.heap import settle_heap
from router.logs import configure_logging
from router.metrics import Metrics
from router.pool import Pool, demo_pool, load_pool, parse_pool, unset_key_variables
from router.runtime import Runtime, open_runtime
from router.settings import Settings, load_settings
from router.tools.replay_pool.app import create_replay_app
from router.tools.replay_pool.dataset import load_routerbench
from router.tools.replay_pool.tool_arms import load_tool_arms
from router.tracing import Tracing, TracingMiddleware, open_tracing
from router.version import installed_version
from store import api_keys

log = logging.getLogger("signalroute")

REPLAY_MOUNT = "/replay"


def self_url(settings: Settings) -> str:
    """The address the service can reach itself at (for the in-process replay pool)."""
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    return f"http://{host}:{settings.port}"


def create_app(
    settings: Settings,
    *,
    replay_app: FastAPI | None = None,
    tracer: Tracer | None = None,
    owns_process: bool = False,
) -> FastAPI:
    """The router service. Raises ConfigError for an invalid pool file or missing replay data
    (or OTLP tracing asked for without the ``otel`` extra).

    Without a pool file the replay pool is mounted at ``/replay`` and used as the pool; it is
    also mounted when a pool file points an arm at ``{self}/replay/v1``. ``replay_app``
    replaces the one built from ``settings.replay`` (tests share one); ``tracer`` replaces
    the one ``settings.otel_*`` describe (``router.tracing``). ``owns_process``: the app is
    what this process serves (``signalroute serve``), so once it is up its start-up heap is
    frozen and the young collections made rarer (``router.heap``); never in a process that
    builds many apps.
    """
    pool: Pool
    if settings.pool_config is not None:
        configured = load_pool(settings.pool_config)
        for problem in unset_key_variables(configured):
            log.warning("%s: %s", settings.pool_config, problem.line())
        if replay_app is None and configured.uses_self(REPLAY_MOUNT):
            replay_app = _replay_app(settings)
        pool = configured.bind_self(self_url(settings))
    else:
        if replay_app is None:
            replay_app = _replay_app(settings)
        served = getattr(replay_app.state, "models", None)
        pool = demo_pool() if served is None else served_arms(demo_pool(), served)
        pool = pool.bind_self(self_url(settings))
    metrics = Metrics()
    tracing = Tracing(tracer) if tracer is not None else open_tracing(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            runtime_context = open_runtime(settings, pool, metrics)
            runtime = await runtime_context.__aenter__()
        except SignalrouteError as exc:
            app.state.startup_error = exc
            raise
        app.state.runtime = runtime
        log.info("ready: %d arms (%s)", len(pool.arms), ", ".join(pool.names))
        await log_access_mode(runtime)
        if owns_process:
            frozen = settle_heap(settings.gc_young_threshold)
            if frozen is not None:
                log.info(
                    "garbage collection: %d start-up objects frozen, young collections every "
                    "%d allocations",
                    frozen,
                    settings.gc_young_threshold,
                )
        try:
            yield
        finally:
            app.state.runtime = None
            await runtime_context.__aexit__(None, None, None)
            tracing.shutdown()  # sends the spans still buffered

    app = FastAPI(
        title="signalroute",
        summary="An online-learning contextual-bandit router for mixtures of LLMs.",
        version=installed_version(),
        lifespan=lifespan,
    )
    app.state.runtime = None
    app.state.metrics = metrics
    app.state.metrics_token = settings.metrics_token
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    if tracing.tracer is not None:  # outermost: the access log line carries the trace id
        app.add_middleware(TracingMiddleware, tracer=tracing.tracer, skip=(REPLAY_MOUNT,))
    install_error_handlers(app)
    app.include_router(health.routes)
    app.include_router(chat.routes)
    app.include_router(route.routes)
    app.include_router(policies.routes)
    app.include_router(metrics_api.routes)
    app.include_router(dashboard.routes)
    if replay_app is not None:
        app.mount(REPLAY_MOUNT, replay_app)
    return app


def _replay_app(settings: Settings) -> FastAPI:
    dataset = load_routerbench(settings.replay.data_path())
    return create_replay_app(settings.replay, dataset, tool_arms=load_tool_arms(settings.replay))


def served_arms(pool: Pool, served: Sequence[str]) -> Pool:
    """The demo pool without the arms its replay pool does not serve (the tool-calling arms,
    when the BFCL data is absent)."""
    kept = [arm for arm in pool.arms if arm.model in served]
    if len(kept) == len(pool.arms):
        return pool
    dropped = [arm.name for arm in pool.arms if arm.model not in served]
    log.info("the replay pool does not serve %s: left out of the pool", ", ".join(dropped))
    return parse_pool(
        {**pool.model_dump(), "arms": [arm.model_dump() for arm in kept]}, source="demo_pool.yaml"
    )


def app_from_env() -> FastAPI:
    """The app built from the environment's settings: the factory each worker process of
    ``signalroute serve --workers N`` calls (uvicorn imports it by name). It configures
    logging too, since a worker process starts with none."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings, owns_process=True)


async def log_access_mode(runtime: Runtime) -> None:
    """Say loudly when nobody is checked (local mode), and when keys are on but none exist."""
    if runtime.settings.auth == "none":
        log.warning(
            "AUTHENTICATION IS OFF (SIGNALROUTE_AUTH=none, local single-user mode): every "
            "caller is trusted, may act for any tenant and send feedback for any request. "
            "Before exposing this service, create keys (`signalroute keys create --tenant "
            "NAME`) and set SIGNALROUTE_AUTH=keys."
        )
        return
    async with runtime.database.connection() as conn:
        active = await api_keys.count_active_keys(conn)
    log.info("authentication: API keys (SIGNALROUTE_AUTH=keys), %d active", active)
    if runtime.settings.metrics_token is None:
        log.info("GET /metrics is open (its labels name tenants): set SIGNALROUTE_METRICS_TOKEN")
    if active == 0:
        log.warning(
            "SIGNALROUTE_AUTH=keys but no API key exists: every request will get 401; "
            "create one with `signalroute keys create --tenant NAME`"
        )
