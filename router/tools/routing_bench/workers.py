"""Learned runs in parallel: one worker process per database, each with its own event loop.

A learned run is single-threaded Python waiting on Postgres about half the time, so two
worker processes keep two cores busy. Each worker owns one database (emptied before every
run) for its whole life, and reports progress (requests routed) through a queue.
"""

from __future__ import annotations

import asyncio
import queue
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any

from router.tools.routing_bench.learned import LearnedRun, LearnedRunner, LearnedSpec, RunSettings
from router.tools.routing_bench.matrix import IndexArray, RoutingMatrix
from store.database import Database


@dataclass(frozen=True)
class Job:
    """One learned run and the streams it routes."""

    spec: LearnedSpec
    train_rows: IndexArray
    test_rows: IndexArray


@dataclass
class _Worker:
    loop: asyncio.AbstractEventLoop
    runner: LearnedRunner
    progress: Any


_worker: _Worker | None = None


def _start_worker(matrix: RoutingMatrix, settings: RunSettings, urls: Any, progress: Any) -> None:
    global _worker
    url = urls.get()
    loop = asyncio.new_event_loop()
    database = loop.run_until_complete(Database.connect(url, max_size=2))
    runner = LearnedRunner(matrix, database, settings)
    _worker = _Worker(loop, runner, progress)


def _run_job(job: Job) -> LearnedRun:
    worker = _worker
    assert worker is not None, "the worker was not started"
    return worker.loop.run_until_complete(
        worker.runner.run(
            job.spec, list(job.train_rows), list(job.test_rows), progress=worker.progress.put
        )
    )


def run_parallel(
    matrix: RoutingMatrix,
    settings: RunSettings,
    jobs: Sequence[Job],
    database_urls: Sequence[str],
    on_progress: Callable[[int], None],
    meanwhile: Callable[[], None] = lambda: None,
) -> list[LearnedRun]:
    """Run ``jobs`` on one worker per database URL; results in job order. ``meanwhile``
    runs here once the jobs are submitted (the workers run on without it)."""
    context = get_context("spawn")
    manager = context.Manager()
    try:
        urls = manager.Queue()
        for url in database_urls:
            urls.put(url)
        progress = manager.Queue()
        with ProcessPoolExecutor(
            max_workers=len(database_urls),
            mp_context=context,
            initializer=_start_worker,
            initargs=(matrix, settings, urls, progress),
        ) as pool:
            futures: list[Future[LearnedRun]] = [pool.submit(_run_job, job) for job in jobs]
            meanwhile()
            pending = set(futures)
            while pending:
                _, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
                _drain(progress, on_progress)
                for future in futures:
                    if future.done() and future.exception() is not None:
                        raise future.exception()  # type: ignore[misc]
            _drain(progress, on_progress)
            return [future.result() for future in futures]
    finally:
        manager.shutdown()


def _drain(progress: Any, on_progress: Callable[[int], None]) -> None:
    while True:
        try:
            on_progress(int(progress.get_nowait()))
        except queue.Empty:
            return


async def run_inline(
    matrix: RoutingMatrix,
    settings: RunSettings,
    jobs: Sequence[Job],
    database: Database,
    on_progress: Callable[[int], None],
) -> list[LearnedRun]:
    """Run ``jobs`` one after the other in this process, on ``database``."""
    runner = LearnedRunner(matrix, database, settings)
    return [
        await runner.run(job.spec, list(job.train_rows), list(job.test_rows), on_progress)
        for job in jobs
    ]
