"""``signalroute bench-history``: the historical look-up with and without the outcomes the
embedding rows carry, on one populated store, interleaved probe by probe.

An embedded Postgres is filled with ``--requests`` RouterBench prompts (hashing embedder),
each with a pre-generation decision and a reward, written by the router's group commit
(``store.batches``). For each probe the joined look-up (each neighbour's decisions and
rewards read by index, as before migration 0013) and the carried one (one kNN scan:
``store.embeddings.neighbour_outcomes``) run one after the other, so both see the same
machine; the client time, Postgres's own execution and planning times, and whether both
return the same outcomes are reported. Then ``--write-batches`` group commits of 50 new
requests alternate with the outcome triggers on and off: what keeping the outcomes costs
the writer.

The third contender is the in-process history index (``router.history_index``), loaded with
the ``--index-rows`` most recent rows (default: all of them, so that it answers the same
question): its time, and on how many probes its exact search returns other outcomes than the
store's HNSW scan (``probes_where_index_differs``) and than the store's exact scan with the
index scan off (``probes_where_index_differs_from_exact``: 0 expected).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from features.embedding import HashingEmbedder
from features.errors import ConfigError
from router.history_index import HistoryIndex, one_blas_thread
from router.settings import ReplaySettings
from router.tools.replay_pool.dataset import load_routerbench
from router.tools.service_bench.overhead import percentiles_json
from store import embeddings
from store.batches import Batch, write_batch
from store.database import Database
from store.embedded import EmbeddedPostgres
from store.records import NeighbourOutcome

TENANT = "bench"
BATCH = 50
TRIGGERS = (
    ("decisions", "decisions_outcomes"),
    ("rewards", "rewards_outcomes"),
    ("query_embeddings", "query_embeddings_outcomes"),
)
_SERVER_TIME = re.compile(r"(Planning|Execution) Time: ([\d.]+) ms")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("out/history"), help="report folder")
    parser.add_argument("--requests", type=int, default=10_000, help="stored requests")
    parser.add_argument("--probes", type=int, default=300, help="look-ups of each kind")
    parser.add_argument("--k", type=int, default=20, help="neighbours per look-up")
    parser.add_argument(
        "--write-batches", type=int, default=40, help="group commits of 50 requests to time"
    )
    parser.add_argument(
        "--index-rows", type=int, default=0, help="rows of the in-process index (0: all stored)"
    )
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark; write ``history.json`` under ``--out``."""
    if (
        args.requests < args.k
        or args.probes < 1
        or args.k < 1
        or args.write_batches < 0
        or args.index_rows < 0
    ):
        raise ConfigError(
            "need --requests >= --k >= 1, --probes >= 1, --write-batches >= 0, --index-rows >= 0"
        )
    prompts = [r.prompt for r in load_routerbench(ReplaySettings().data_path())]
    embedded = EmbeddedPostgres()
    url = embedded.start(Path(tempfile.mkdtemp(prefix="signalroute-history-")) / "data")
    try:
        report = asyncio.run(_measure(url, prompts, args))
    finally:
        embedded.stop()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    (out / "history.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({key: v for key, v in report.items() if key != "config"}, indent=2))
    return 0


async def _measure(url: str, prompts: Sequence[str], args: argparse.Namespace) -> dict[str, Any]:
    database = await Database.connect(url, max_size=2)
    embedder = HashingEmbedder()
    rng = np.random.default_rng(args.seed)
    arms = ("small", "medium", "large")
    try:
        started = time.perf_counter()
        for first in range(0, args.requests, 500):
            texts = prompts[first : min(args.requests, first + 500)]
            async with database.connection() as conn:
                await write_batch(conn, _batch(texts, embedder, rng, arms))
        populated_s = time.perf_counter() - started
        async with database.connection(transaction=False) as conn:
            await conn.execute("VACUUM ANALYZE")
        probes = [embedder.embed(prompts[-1 - i]) for i in range(args.probes)]
        index = HistoryIndex(database, args.index_rows or args.requests)
        one_blas_thread()  # as the service runs it
        await index.load()
        async with database.connection(transaction=False) as conn:
            lookups = await _lookups(conn, probes, args.k)
            lookups.update(await _index_lookups(conn, index, probes, args.k))
        lookups["ratio_index_to_carried_p50"] = round(
            lookups["index_ms"]["p50"] / lookups["carried_client_ms"]["p50"], 4
        )
        writes = await _writes(database, prompts, embedder, rng, arms, args.write_batches)
    finally:
        await database.close()
    return {
        "config": {
            "requests": args.requests,
            "probes": args.probes,
            "k": args.k,
            "write_batches": args.write_batches,
            "seed": args.seed,
            "index_rows": args.index_rows or args.requests,
            "populated_s": round(populated_s, 1),
        },
        **lookups,
        **writes,
    }


def _batch(
    texts: Sequence[str], embedder: HashingEmbedder, rng: np.random.Generator, arms: Sequence[str]
) -> Batch:
    batch = Batch()
    for text in texts:
        request_id, decision_id = uuid.uuid4(), uuid.uuid4()
        arm = str(arms[int(rng.integers(len(arms)))])
        batch.request(
            request_id=request_id,
            tenant=TENANT,
            user_id=None,
            session_id=None,
            messages=[{"role": "user", "content": text}],
            params={},
            api_key_id=None,
        )
        batch.decision(
            decision_id=decision_id,
            request_id=request_id,
            stage="pre",
            context={},
            arms=list(arms),
            chosen_arm=arm,
            probability=1 / len(arms),
            pmf={a: 1 / len(arms) for a in arms},
            policy_name="bench",
            policy_version=1,
        )
        batch.reward(
            decision_id=decision_id,
            value=float(rng.random()),
            source="run",
            idempotency_key=f"run:{decision_id}",
            policy_update=None,
        )
        batch.embedding(
            request_id=request_id, tenant=TENANT, user_id=None, embedding=embedder.embed(text)
        )
    return batch


async def _joined(
    conn: AsyncConnection[Any], probe: Any, k: int, explain: bool
) -> list[NeighbourOutcome] | dict[str, float]:
    query = embeddings.joined_outcomes(None, None)
    params = {**embeddings.knn_params(probe, k, TENANT, None, None), "stage": "pre"}
    return await _run(conn, query, params, explain)


async def _carried(
    conn: AsyncConnection[Any], probe: Any, k: int, explain: bool
) -> list[NeighbourOutcome] | dict[str, float]:
    query = embeddings.carried_outcomes(None, None)
    params = embeddings.knn_params(probe, k, TENANT, None, None)
    return await _run(conn, query, params, explain)


async def _run(
    conn: AsyncConnection[Any], query: sql.Composed, params: dict[str, Any], explain: bool
) -> list[NeighbourOutcome] | dict[str, float]:
    async with conn.cursor(row_factory=dict_row) as cursor:
        if explain:
            await cursor.execute(sql.SQL("EXPLAIN (ANALYZE, TIMING OFF) ") + query, params)
            text = "\n".join(str(next(iter(row.values()))) for row in await cursor.fetchall())
            return {name.lower(): float(ms) for name, ms in _SERVER_TIME.findall(text)}
        await cursor.execute(query, params)
        return [NeighbourOutcome(**row) for row in await cursor.fetchall()]


async def _lookups(conn: AsyncConnection[Any], probes: Sequence[Any], k: int) -> dict[str, Any]:
    kinds = {"joined": _joined, "carried": _carried}
    client: dict[str, list[float]] = {name: [] for name in kinds}
    server: dict[str, dict[str, list[float]]] = {
        name: {"execution": [], "planning": []} for name in kinds
    }
    different = 0
    for probe in probes[: min(20, len(probes))]:  # warm the caches
        for look_up in kinds.values():
            await look_up(conn, probe, k, False)
    for index, probe in enumerate(probes):
        found = {}
        order = list(kinds.items()) if index % 2 == 0 else list(kinds.items())[::-1]
        for name, look_up in order:
            began = time.perf_counter()
            found[name] = await look_up(conn, probe, k, False)
            client[name].append((time.perf_counter() - began) * 1000.0)
        different += found["joined"] != found["carried"]
        for name, look_up in order:
            times = await look_up(conn, probe, k, True)
            assert isinstance(times, dict)
            for part, ms in times.items():
                server[name][part].append(ms)
    report: dict[str, Any] = {"probes_with_different_outcomes": different}
    for name in kinds:
        report[f"{name}_client_ms"] = percentiles_json(client[name])
        report[f"{name}_server_ms"] = {
            part: percentiles_json(values) for part, values in server[name].items()
        }
    report["ratio_client_p50"] = round(
        report["carried_client_ms"]["p50"] / report["joined_client_ms"]["p50"], 3
    )
    return report


async def _index_lookups(
    conn: AsyncConnection[Any], index: HistoryIndex, probes: Sequence[Any], k: int
) -> dict[str, Any]:
    """The in-process index's look-ups, timed, and compared with the store's HNSW scan and
    its exact scan (the index scan off) for the same probes."""
    times: list[float] = []
    differs = differs_from_exact = 0
    for probe in probes[: min(20, len(probes))]:  # warm the caches
        index.neighbour_outcomes(probe, k=k, tenant=TENANT)
    for probe in probes:
        began = time.perf_counter()
        rows = index.neighbour_outcomes(probe, k=k, tenant=TENANT)
        times.append((time.perf_counter() - began) * 1000.0)
        found = [(r.request_id, r.arm, r.reward, r.created_at) for r in rows]
        approximate = await _carried(conn, probe, k, False)
        async with conn.transaction():
            await conn.execute("SET LOCAL enable_indexscan = off")
            exact = await _carried(conn, probe, k, False)
        assert isinstance(approximate, list)
        assert isinstance(exact, list)
        differs += found != [(r.request_id, r.arm, r.reward, r.created_at) for r in approximate]
        differs_from_exact += found != [
            (r.request_id, r.arm, r.reward, r.created_at) for r in exact
        ]
    return {
        "index_ms": percentiles_json(times),
        "probes_where_index_differs": differs,
        "probes_where_index_differs_from_exact": differs_from_exact,
    }


async def _writes(
    database: Database,
    prompts: Sequence[str],
    embedder: HashingEmbedder,
    rng: np.random.Generator,
    arms: Sequence[str],
    batches: int,
) -> dict[str, Any]:
    """Group commits with the outcome triggers on and off, alternating (the rows written
    with them off carry no outcomes: this runs after the look-ups)."""
    timings: dict[str, list[float]] = {"triggers_on": [], "triggers_off": []}
    for index in range(batches):
        on = index % 2 == 0
        texts = [prompts[int(i)] for i in rng.integers(0, len(prompts), BATCH)]
        batch = _batch(texts, embedder, rng, arms)
        async with database.connection() as conn:
            if not on:
                for table, trigger in TRIGGERS:
                    await conn.execute(
                        sql.SQL("ALTER TABLE {} DISABLE TRIGGER {}").format(
                            sql.Identifier(table), sql.Identifier(trigger)
                        )
                    )
            began = time.perf_counter()
            await write_batch(conn, batch)
            timings["triggers_on" if on else "triggers_off"].append(
                (time.perf_counter() - began) * 1000.0
            )
            if not on:
                for table, trigger in TRIGGERS:
                    await conn.execute(
                        sql.SQL("ALTER TABLE {} ENABLE TRIGGER {}").format(
                            sql.Identifier(table), sql.Identifier(trigger)
                        )
                    )
    if not batches:
        return {}
    return {f"write_batch_of_{BATCH}_ms": {k: percentiles_json(v) for k, v in timings.items()}}
