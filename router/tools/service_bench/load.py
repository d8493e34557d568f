"""``signalroute bench-load``: sustained load on the router, and proof that nothing was lost.

Three processes on loopback, plus the embedded Postgres this command owns: the replay pool
(recorded answers, no model latency, streams paced at a million chunks a second), the router
(``serve --workers 2`` by default: two replica workers and the learner that learns for both)
pointed at it, and this process as the load generator
(``router.tools.service_bench.loadgen``). After ``--duration`` seconds the load stops; the store is
read twice: ``--drain-wait`` seconds later with the router still up (what its background
writer still had to write), and after the router shut down (what was lost).

Post-generation stages (judge, escalation, component repair) are off, as in
``bench-overhead``: they are extra model calls, not router work. Pre- and in-generation run
in full: signals, pgvector kNN, VW draw, streamed generation through the detectors,
validators, reward, learning and logging. Everything shares this machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from features.errors import ConfigError
from router.settings import ReplaySettings
from router.tools.replay_pool.dataset import load_routerbench
from router.tools.service_bench import memory
from router.tools.service_bench.cpu import CpuMeter, postmaster_pid, tree
from router.tools.service_bench.litellm_proxy import LiteLLM, maybe_litellm
from router.tools.service_bench.litellm_proxy import version as litellm_version
from router.tools.service_bench.load_check import StoreCheck, check_store
from router.tools.service_bench.loadgen import (
    LoadPlan,
    Routed,
    drive,
    drive_proxy,
    in_window,
    models_in_order,
)
from router.tools.service_bench.memory import RssSampler
from router.tools.service_bench.overhead import percentiles_json, pool_yaml
from router.tools.service_bench.processes import (
    IDLE_CONNECTION_S,
    benchmark_environment,
    free_port,
    run_fast,
    server_process,
    stop,
)
from store.database import Database
from store.embedded import PG_SUBDIR, EmbeddedPostgres

TARGET_THROUGHPUT_RATIO = 1.5
"""Routed requests a second signalroute should serve over LiteLLM's under the same load in the
same run (with no errors and nothing lost): a ratio, since an absolute figure on a shared
machine says as much about the neighbours as about the router."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("out/load"), help="report folder")
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of load")
    parser.add_argument(
        "--warmup", type=float, default=5.0, help="first seconds left out of the figures"
    )
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    parser.add_argument("--workers", type=int, default=2, help="router worker processes")
    parser.add_argument(
        "--direct-every",
        type=int,
        default=4,
        help="pair every k-th request with the same request sent to the replay pool directly",
    )
    parser.add_argument("--users", type=int, default=0, help="user ids to spread requests over")
    parser.add_argument(
        "--drain-wait", type=float, default=5.0, help="seconds before the first store check"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="record the router workers with py-spy (collapsed stacks in OUT/router-profile.txt)",
    )
    parser.add_argument(
        "--litellm",
        type=Path,
        default=None,
        help="path of LiteLLM's `litellm` proxy executable (pip install 'litellm[proxy]'): "
        "after the router, the same load goes through LiteLLM on the same replay pool; "
        "omitted: LiteLLM is not measured",
    )
    parser.add_argument(
        "--rss-every",
        type=float,
        default=10.0,
        help="seconds between resident-memory samples of each process (0: none)",
    )
    parser.add_argument("--seed", type=int, default=0)


def _check_arguments(args: argparse.Namespace) -> None:
    if args.duration <= 0 or not 0 <= args.warmup < args.duration:
        raise ConfigError("need --duration > 0 and 0 <= --warmup < --duration")
    if args.concurrency < 1 or args.workers < 1 or args.direct_every < 0 or args.users < 0:
        raise ConfigError("need --concurrency >= 1, --workers >= 1, --direct-every >= 0")
    if args.rss_every < 0:
        raise ConfigError("need --rss-every >= 0")


def run(args: argparse.Namespace) -> int:
    """Run the benchmark; write ``load.json`` and ``load.md`` (and ``rss.png`` when
    ``--rss-every`` is set and matplotlib is installed) under ``--out``."""
    _check_arguments(args)
    data = ReplaySettings().data_path()
    dataset = load_routerbench(data)
    prompts = [r.prompt for r in dataset]
    order = np.random.default_rng(args.seed).permutation(len(prompts))
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="signalroute-load-"))
    replay_port, router_port = free_port(), free_port()
    replay_url = f"http://127.0.0.1:{replay_port}"
    router_url = f"http://127.0.0.1:{router_port}"
    env = benchmark_environment(args.seed, data, SIGNALROUTE_REPLAY_LATENCY_MS="0")
    (work / "pool.yaml").write_text(pool_yaml(dataset.models, replay_url))
    me = [sys.executable, "-m", "router.cli"]
    plan = LoadPlan(
        router_url=router_url,
        replay_url=replay_url,
        prompts=tuple(prompts[i] for i in order),
        concurrency=args.concurrency,
        duration_s=args.duration,
        direct_every=args.direct_every,
        users=args.users,
    )
    embedded = EmbeddedPostgres()
    database_url = embedded.start(work / "data")
    env["SIGNALROUTE_DATABASE_URL"] = database_url
    reference: dict[str, Any] | None = None
    try:
        with ExitStack() as servers:
            replay = servers.enter_context(
                server_process(
                    [*me, "replay-pool", "--port", str(replay_port)],
                    env,
                    work / "replay.log",
                    f"{replay_url}/healthz",
                )
            )
            # Started first, so that its start-up is not in the router's window; it idles
            # until its turn.
            litellm = servers.enter_context(
                maybe_litellm(args.litellm, dataset.models, replay_url, work, workers=args.workers)
            )
            router = servers.enter_context(
                server_process(
                    [
                        *me,
                        *("serve", "--port", str(router_port), "--config", str(work / "pool.yaml")),
                        *("--workers", str(args.workers)),
                    ],
                    env,
                    work / "router.log",
                    f"{router_url}/readyz",
                    stop_timeout_s=60,
                )
            )
            _settle(router_url)
            print(
                f"load: {args.duration:g} s at {args.concurrency} in flight, "
                f"{args.workers} router workers"
            )
            pgdata = work / "data" / PG_SUBDIR
            components = {
                "router": lambda: tree(router.pid),
                "replay_pool": lambda: tree(replay.pid),
                "postgres": _postgres(pgdata),
                "load_generator": lambda: [os.getpid()],
            }
            meter = CpuMeter(components)
            sampler = RssSampler(components, args.rss_every) if args.rss_every > 0 else None
            load_before = os.getloadavg()
            meter.start()
            if sampler is not None:
                sampler.start()
            with _profiler(args.profile, router.pid, args.duration, out):
                results = run_fast(_load(plan))
            rss = sampler.stop() if sampler is not None else []
            cpu = Cpu(meter.stop(), load_before, os.getloadavg())
            time.sleep(args.drain_wait)
            pending = asyncio.run(_check(database_url, results))
            policy_updates = _policy_updates(router_url)
            exit_code = stop(router, 60)
            final = asyncio.run(_check(database_url, results))
            if litellm is not None:
                reference = _run_litellm(litellm, replay.pid, plan, results, args)
                reference["version"] = litellm_version(args.litellm)
    finally:
        embedded.stop()
    report = summarize(results, args, pending, final, exit_code, cpu)
    report["policy_updates_after_drain_wait"] = policy_updates
    if sampler is not None:
        report["rss"] = memory.as_json(rss, args.rss_every, args.warmup)
        if memory.plot(rss, args.warmup, out / "rss.png"):
            report["rss"]["plot"] = "rss.png"
    if reference is not None:
        report = with_reference(report, reference, final)
    (out / "load.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "load.md").write_text(markdown(report))
    print(markdown(report))
    if final.lost or report["errors"]:
        print(f"logs kept in {work}", file=sys.stderr)
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _run_litellm(
    litellm: LiteLLM,
    replay_pid: int,
    plan: LoadPlan,
    routed: Sequence[Routed],
    args: argparse.Namespace,
) -> dict[str, Any]:
    """The same load through LiteLLM's proxy (the router already stopped): the same prompts
    in the same order, each to the model the router chose for it, with the same accounting."""
    models = models_in_order(routed)
    if not models:
        raise ConfigError("no routed request succeeded: no models to send LiteLLM")
    print(f"LiteLLM: the same {args.duration:g} s at {args.concurrency} in flight")
    meter = CpuMeter(
        {
            "litellm": lambda: tree(litellm.pid),
            "replay_pool": lambda: tree(replay_pid),
            "load_generator": lambda: [os.getpid()],
        }
    )
    load_before = os.getloadavg()
    meter.start()
    results = run_fast(_load_proxy(plan, litellm, models))
    cpu = Cpu(meter.stop(), load_before, os.getloadavg())
    return summarize_reference(results, args, cpu)


def summarize_reference(
    results: Sequence[Routed], args: argparse.Namespace, cpu: Cpu
) -> dict[str, Any]:
    """The reference's part of the report, over the same window as the router's."""
    window = in_window(results, args.warmup, args.duration)
    ok = [r for r in window if r.ok]
    failures = [r for r in results if not r.ok]
    paired = [r for r in ok if r.direct_ms is not None]
    latency = percentiles_json([r.latency_ms for r in ok])
    return {
        "requests": len(results),
        "errors": len(failures),
        "error_examples": [r.error for r in failures[:5]],
        "routed_rps": round(len(ok) / (args.duration - args.warmup), 1),
        "p50_ms": latency["p50"] if latency else None,
        "p99_ms": latency["p99"] if latency else None,
        "added_ms": percentiles_json([r.latency_ms - (r.direct_ms or 0.0) for r in paired]),
        "cpu_ms_per_request": _cpu_per_request(cpu, len(results)),
        "loadavg_1m": {"before": cpu.loadavg_before[0], "after": cpu.loadavg_after[0]},
    }


def with_reference(
    report: dict[str, Any], reference: dict[str, Any], final: StoreCheck
) -> dict[str, Any]:
    """The report with LiteLLM's figures, the ratios and the throughput target's verdict."""
    ratio = ratios(report, reference)
    met = bool(
        ratio["throughput"] is not None
        and ratio["throughput"] >= TARGET_THROUGHPUT_RATIO
        and report["errors"] == 0
        and final.lost == 0
    )
    return {
        **report,
        "litellm": reference,
        "ratio": ratio,
        "targets": {**report["targets"], "met": met},
    }


def ratios(report: dict[str, Any], reference: dict[str, Any]) -> dict[str, float | None]:
    """Signalroute over the reference: routed requests a second (above 1: signalroute serves
    more) and p99 latency (below 1: signalroute is faster)."""
    throughput = (
        round(report["throughput_rps"] / reference["routed_rps"], 3)
        if reference["routed_rps"]
        else None
    )
    latency = report["latency_ms"]
    p99 = (
        round(latency["p99"] / reference["p99_ms"], 3)
        if latency is not None and reference["p99_ms"]
        else None
    )
    return {"throughput": throughput, "p99": p99}


def _settle(router_url: str, seconds: float = 2.0) -> None:
    """Give every worker time to finish starting (``/readyz`` answers once one is ready; a
    worker accepts connections only after its start-up, so none is sent to a starting one)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with httpx.Client(timeout=2.0) as fresh:
            fresh.get(f"{router_url}/readyz")
        time.sleep(0.1)


def _policy_updates(router_url: str) -> dict[str, int]:
    """Rewards each stage's policy has learned, as a worker serves it (with workers, the
    learner's newest snapshot it adopted)."""
    response = httpx.get(f"{router_url}/policies", timeout=10)
    return {p["stage"]: int(p["updates"]) for p in response.json()["policies"]}


@dataclass(frozen=True)
class Cpu:
    """CPU seconds each process group used during the load, and the machine's load average
    (1 minute) before and after: other work on a shared machine shows there."""

    seconds: dict[str, float]
    loadavg_before: tuple[float, float, float]
    loadavg_after: tuple[float, float, float]


def _postgres(pgdata: Path) -> Callable[[], list[int]]:
    def pids() -> list[int]:
        pid = postmaster_pid(pgdata)
        return tree(pid) if pid is not None else []

    return pids


async def _load(plan: LoadPlan) -> list[Routed]:
    connections = plan.concurrency * 2
    limits = httpx.Limits(
        max_connections=connections,
        max_keepalive_connections=connections,
        keepalive_expiry=IDLE_CONNECTION_S,
    )
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        return await drive(client, plan)


async def _load_proxy(plan: LoadPlan, litellm: LiteLLM, models: Sequence[str]) -> list[Routed]:
    connections = plan.concurrency * 2
    limits = httpx.Limits(
        max_connections=connections,
        max_keepalive_connections=connections,
        keepalive_expiry=IDLE_CONNECTION_S,
    )
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        return await drive_proxy(client, plan, litellm.url, models, headers=litellm.headers)


async def _check(database_url: str, results: Sequence[Routed]) -> StoreCheck:
    database = await Database.connect(database_url, max_size=4, run_migrations=False)
    try:
        return await check_store(database, results)
    finally:
        await database.close()


@contextmanager
def _profiler(enabled: bool, pid: int, duration_s: float, out: Path) -> Iterator[None]:
    """py-spy on the router's processes for the run (when ``enabled``)."""
    if not enabled:
        yield
        return
    executable = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(executable).exists():
        raise ConfigError("--profile needs py-spy (pip install py-spy)")
    args = [
        executable,
        *("record", "--subprocesses", "--nonblocking", "--format", "raw"),
        *("--pid", str(pid), "--duration", str(max(1, int(duration_s)))),
        *("--output", str(out / "router-profile.txt")),
    ]
    profiler = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        try:
            profiler.wait(timeout=30)
        except subprocess.TimeoutExpired:
            profiler.terminate()


def summarize(
    results: Sequence[Routed],
    args: argparse.Namespace,
    pending: StoreCheck,
    final: StoreCheck,
    router_exit_code: int | None,
    cpu: Cpu,
) -> dict[str, Any]:
    """The report: stable keys, latencies in ms over the measured window."""
    window = in_window(results, args.warmup, args.duration)
    ok = [r for r in window if r.ok]
    failures = [r for r in results if not r.ok]
    paired = [r for r in ok if r.direct_ms is not None]
    added = [r.latency_ms - (r.direct_ms or 0.0) for r in paired]
    window_s = args.duration - args.warmup
    report: dict[str, Any] = {
        "config": {
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "concurrency": args.concurrency,
            "workers": args.workers,
            "direct_every": args.direct_every,
            "users": args.users,
            "drain_wait_s": args.drain_wait,
            "seed": args.seed,
            "cpu_count": os.cpu_count(),
            "stages": "pre- and in-generation on; judge, escalation, components off",
            "replay": "no model latency, 1e6 stream chunks/s, RouterBench prompts",
        },
        "requests": len(results),
        "ok": sum(1 for r in results if r.ok),
        "errors": len(failures),
        "error_statuses": dict(Counter(str(r.status) for r in failures)),
        "error_examples": [r.error for r in failures[:5]],
        "throughput_rps": round(len(ok) / window_s, 1),
        "latency_ms": percentiles_json([r.latency_ms for r in ok]),
        "direct_ms": percentiles_json([r.direct_ms or 0.0 for r in paired]),
        "router_added_ms": percentiles_json(added),
        "decision_ms": percentiles_json([r.decision_ms for r in ok if r.decision_ms is not None]),
        "cpu_ms_per_request": _cpu_per_request(cpu, len(results)),
        "loadavg_1m": {"before": cpu.loadavg_before[0], "after": cpu.loadavg_after[0]},
        "store_pending_after_drain_wait": pending.as_json(),
        "store": final.as_json(),
        "router_exit_code": router_exit_code,
    }
    report["targets"] = {
        "throughput_ratio_over_litellm": TARGET_THROUGHPUT_RATIO,
        "met": None,  # known once the same load ran through LiteLLM (``with_reference``)
    }
    return report


def _cpu_per_request(cpu: Cpu, requests: int) -> dict[str, float]:
    """CPU milliseconds each part spent per routed request (its direct calls included), and
    the routed req/s their sum would allow on the machine's cores if nothing else ran."""
    per = {name: round(s * 1000.0 / max(1, requests), 3) for name, s in cpu.seconds.items()}
    total = sum(per.values())
    per["total"] = round(total, 3)
    per["capacity_rps_at_full_cpu"] = (
        round((os.cpu_count() or 1) * 1000.0 / total, 1) if total else 0.0
    )
    return per


def _cell(stats: dict[str, float] | None) -> str:
    return "n/a" if stats is None else f"{stats['p50']:.1f} / {stats['p99']:.1f}"


def markdown(report: dict[str, Any]) -> str:
    config = report["config"]
    store = report["store"]
    rows = [
        "| workers | in flight | routed req/s | errors | routed p50/p99 (ms) | "
        "direct p50/p99 (ms) | router-added p50/p99 (ms) | decision p50/p99 (ms) | "
        "lost requests / decisions / rewards |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| {config['workers']} | {config['concurrency']} | {report['throughput_rps']} | "
        f"{report['errors']} | {_cell(report['latency_ms'])} | {_cell(report['direct_ms'])} | "
        f"{_cell(report['router_added_ms'])} | {_cell(report['decision_ms'])} | "
        f"{store['missing_requests'] + store['incomplete_requests']} / "
        f"{store['missing_decisions']} / {store['missing_rewards']} |",
    ]
    note = (
        f"\n{report['ok']} answered requests checked in the store ({store['decisions']} "
        f"decisions, {store['rewards']} rewards) after {config['duration_s']:g} s of load "
        f"({config['warmup_s']:g} s warm-up left out of the figures) on {config['cpu_count']} "
        f"cores shared by Postgres, the router, the replay pool and the load generator.\n"
    )
    cpu = report["cpu_ms_per_request"]
    load = report["loadavg_1m"]
    cpu_note = (
        f"\nCPU per routed request (ms): router {cpu['router']}, replay pool "
        f"{cpu['replay_pool']}, Postgres {cpu['postgres']}, load generator "
        f"{cpu['load_generator']}; total {cpu['total']}, i.e. about "
        f"{cpu['capacity_rps_at_full_cpu']} req/s if every core ran only these. Load average "
        f"(1 min) {load['before']:.2f} before, {load['after']:.2f} after.\n"
    )
    updates = report.get("policy_updates_after_drain_wait")
    if updates is not None:
        cpu_note += (
            f"\nPre-generation policy: {updates.get('pre', 0)} updates served "
            f"{config.get('drain_wait_s', 0):g} s after the load, of {store['rewards']} rewards.\n"
        )
    return "\n".join(rows) + "\n" + note + cpu_note + _reference_note(report) + _rss_note(report)


def _reference_note(report: dict[str, Any]) -> str:
    reference = report.get("litellm")
    if reference is None:
        return ""
    cpu = reference["cpu_ms_per_request"]
    ratio = report["ratio"]
    verdict = "met" if report["targets"]["met"] else "not met"
    added = reference["added_ms"]
    return (
        f"\nThe same load through LiteLLM {reference.get('version') or ''} (after the router, "
        f"same prompts, models, replay pool, in flight and duration): "
        f"{reference['routed_rps']} req/s, p50/p99 {reference['p50_ms']} / "
        f"{reference['p99_ms']} ms, added p50/p99 {_cell(added)} ms, "
        f"{reference['errors']} errors; CPU per request (ms): LiteLLM {cpu['litellm']}, "
        f"replay pool {cpu['replay_pool']}, load generator {cpu['load_generator']}.\n"
        f"\nSignalroute over LiteLLM: throughput {ratio['throughput']}x, p99 {ratio['p99']}x. "
        f"Target: >= {TARGET_THROUGHPUT_RATIO:g}x LiteLLM's req/s with no errors and nothing "
        f"lost: {verdict}.\n"
    )


def _rss_note(report: dict[str, Any]) -> str:
    rss = report.get("rss")
    if not rss or not rss["samples"]:
        return ""
    last = rss["samples"][-1]
    private = rss.get("growth_without_shared_memory_pct", {})
    parts = ", ".join(
        f"{name} {last[name]:.0f} MiB ({rss['growth_pct'].get(name, 0.0):+.1f}%; without "
        f"shared memory {private.get(name, 0.0):+.1f}%)"
        for name in rss["growth_pct"]
    )
    per_process = rss.get("growth_per_process", {})
    processes = ", ".join(
        f"{name} {figures['largest_pct']:+.1f}% ({figures.get('largest_from_mb', 0.0):.1f} to "
        f"{figures.get('largest_to_mb', 0.0):.1f} MiB; {figures['processes_first']:g} processes, "
        f"then {figures['processes_last']:g})"
        for name, figures in per_process.items()
    )
    return (
        f"\nResident memory at the end (growth after the {rss['after_s']:g} s warm-up, sampled "
        f"every {rss['every_s']:g} s): {parts or 'no sample after the warm-up'}.\n"
        + (
            f"\nLargest growth of one process alive through the run (without shared memory): "
            f"{processes}.\n"
            if processes
            else ""
        )
    )
