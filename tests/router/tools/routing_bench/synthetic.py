"""A small synthetic routing matrix: two tasks, three models, answers with text.

``cheap`` is right on ``easy`` prompts and wrong on ``hard`` ones, ``strong`` is right on both
at ten times the price, ``mid`` is right on every other prompt. Every answer is a distinct
text, so the judge and the validators can tell them apart.
"""

from __future__ import annotations

from typing import Any

from router.tools.routing_bench.matrix import RoutingMatrix
from router.tools.routing_bench.tables import build_matrix

MODELS = ("cheap", "mid", "strong")
COST_USD = {"cheap": 0.0001, "mid": 0.0004, "strong": 0.001}


def synthetic_rows(n_prompts: int = 50, *, with_split: bool = True) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for i in range(n_prompts):
        task = "easy" if i % 2 == 0 else "hard"
        topic = "arithmetic sums" if task == "easy" else "proofs about prime numbers"
        prompt = f"Question {i} on {topic}: explain your answer to item {i}."
        for model in MODELS:
            right = {
                "cheap": task == "easy",
                "mid": i % 4 in (0, 1),
                "strong": True,
            }[model]
            row: dict[str, Any] = {
                "prompt_id": f"p{i}",
                "prompt": prompt,
                "task": task,
                "model": model,
                "quality": 1.0 if right else 0.0,
                "cost_usd": COST_USD[model],
                "response": f"{model} says item {i} is {'right' if right else 'off'}.",
            }
            if with_split:
                row["split"] = "train" if i < int(n_prompts * 0.7) else "test"
            rows.append(row)
    return rows


def synthetic_matrix(n_prompts: int = 50) -> RoutingMatrix:
    return build_matrix(
        synthetic_rows(n_prompts), name="synthetic", judge_model="mid", source="synthetic"
    )
