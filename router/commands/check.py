"""``signalroute check``: validate a pool file without starting the service.

Every problem of the file is listed at once (errors, then warnings such as an
``api_key_env`` variable that is not set here). ``--probe`` then sends each arm (and the
judge) a one-token request and shows which answer. Exit status: 0 when the file is valid
(and, with ``--probe``, every arm answered), 1 otherwise; warnings fail only with
``--strict``.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from features.errors import ConfigError
from router.arm_probes import ProbeResult, probe_arms
from router.commands.tables import render_table
from router.pool import Pool, read_pool_document, unset_key_variables, validate_pool
from router.pool_problems import Problem
from router.providers import OpenAICompatProvider, Provider
from router.settings import load_settings


def add_check_command(commands: Any) -> None:
    """Register ``check`` on the CLI's sub-command parsers."""
    check = commands.add_parser(
        "check",
        help="validate a pool file and list every problem in it; --probe asks each arm to answer",
        description=__doc__,
    )
    check.add_argument(
        "--config",
        type=Path,
        help="the pool file to check (unset: SIGNALROUTE_POOL_CONFIG)",
    )
    check.add_argument(
        "--probe",
        action="store_true",
        help="send each arm and the judge a one-token request and report which answer",
    )
    check.add_argument(
        "--router-url",
        help="where '{self}' in a base URL points when probing "
        "(unset: http://SIGNALROUTE_HOST:SIGNALROUTE_PORT)",
    )
    check.add_argument(
        "--timeout-s", type=float, default=30.0, help="longest wait for each arm's answer"
    )
    check.add_argument("--strict", action="store_true", help="fail on warnings too")
    check.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    path: Path | None = args.config or settings.pool_config
    if path is None:
        raise ConfigError(
            "no pool file to check: pass --config FILE or set SIGNALROUTE_POOL_CONFIG"
        )
    pool, problems = validate_pool(read_pool_document(path))
    if pool is not None:
        problems = unset_key_variables(pool)
    print(report(str(path), pool, problems))
    errors = [p for p in problems if p.severity == "error"]
    failed = bool(errors) or (args.strict and bool(problems))
    if pool is None or not args.probe:
        return 1 if failed else 0
    router_url = args.router_url or f"http://{settings.host}:{settings.port}"
    results = asyncio.run(probe(pool.bind_self(router_url.rstrip("/")), args.timeout_s))
    print()
    print(probe_table(results))
    return 1 if failed or not all(r.ok for r in results) else 0


def report(source: str, pool: Pool | None, problems: Sequence[Problem]) -> str:
    """What ``check`` prints about a file: its problems (errors first), or that it is valid."""
    ordered = sorted(problems, key=lambda p: p.severity != "error")
    lines = [f"  {p.severity}: {p.line()}" for p in ordered]
    if pool is None:
        count = sum(p.severity == "error" for p in problems)
        return f"{source}: invalid, {count} problem{'s' if count != 1 else ''}:\n" + "\n".join(
            lines
        )
    judge = f"; judge {pool.judge.name}" if pool.judge is not None else ""
    profiles = ", ".join(pool.profile_ids)
    head = f"{source}: valid: {len(pool.arms)} arms ({', '.join(pool.names)}){judge}; "
    head += f"profiles {profiles}"
    if lines:
        head += f"\n{len(lines)} warning{'s' if len(lines) != 1 else ''}:\n" + "\n".join(lines)
    return head


async def probe(pool: Pool, timeout_s: float) -> list[ProbeResult]:
    """Send every arm of ``pool`` and its judge the one-token probe, all at once."""
    limited = [arm.model_copy(update={"timeout_s": timeout_s}) for arm in pool.arms]
    if pool.judge is not None:
        judge = pool.judge.model_copy(update={"timeout_s": timeout_s})
        limited.append(judge.model_copy(update={"name": f"{judge.name} (judge)"}))
    async with httpx.AsyncClient() as http:
        providers: list[Provider] = [OpenAICompatProvider(arm, http) for arm in limited]
        return await probe_arms(providers)


def probe_table(results: Sequence[ProbeResult]) -> str:
    """The probe's results as a table: which arms answered, how fast, and what or why not."""
    answered = sum(r.ok for r in results)
    rows = [
        {
            "arm": r.arm,
            "answered": r.ok,
            "latency_ms": round(r.latency_ms, 1),
            "answer or error": r.detail,
        }
        for r in results
    ]
    title = f"probe: {answered} of {len(results)} answered"
    return render_table(rows, title=title, max_width=100)
