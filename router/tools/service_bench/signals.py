"""How long query signals take per request: embedding, then the full signal extraction.

``signalroute bench-signals`` runs both over real prompts (RouterBench) and prints p50/p99.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from features.categories import CategoryIndex
from features.embedding import Embedder, HashingEmbedder
from features.query import query_signals


@dataclass(frozen=True)
class Latency:
    name: str
    n: int
    p50_ms: float
    p99_ms: float

    def line(self) -> str:
        return f"{self.name:<28} n={self.n:<6} p50={self.p50_ms:.3f} ms  p99={self.p99_ms:.3f} ms"


def _summary(name: str, samples_s: Sequence[float]) -> Latency:
    ms = np.asarray(samples_s) * 1000.0
    return Latency(name, len(ms), float(np.percentile(ms, 50)), float(np.percentile(ms, 99)))


def measure(prompts: Sequence[str], embedder: Embedder | None = None) -> list[Latency]:
    """Time the embedder alone and embedder + query signals, one prompt at a time."""
    embedder = embedder or HashingEmbedder()
    categories = CategoryIndex.build(embedder)
    embed_s: list[float] = []
    signals_s: list[float] = []
    for prompt in prompts:
        messages = [{"role": "user", "content": prompt}]
        started = time.perf_counter()
        vector = embedder.embed(prompt)
        embedded = time.perf_counter()
        query_signals(messages, None, vector, categories)
        done = time.perf_counter()
        embed_s.append(embedded - started)
        signals_s.append(done - started)
    return [_summary("embedding", embed_s), _summary("embedding + query signals", signals_s)]


def report(results: Sequence[Latency]) -> str:
    return json.dumps([r.__dict__ for r in results], indent=2)
