"""The matrix as a model pool: a ``Provider`` per model and the recorded-label ``Judge``.

``MatrixProvider`` answers a request with the model's recorded answer to the recorded prompt
the request carries, billed at the recorded cost, streamed in small pieces so the router's
in-generation detectors see it arrive. The router's own prompts around a request (escalation,
component repair: ``router/lifecycle/prompts.py``) keep the request verbatim at their start;
they map to that prompt, and the extra input is billed at the model's list input price.

``MatrixJudge`` is the benchmark judge (docs/benchmarks/index.md): its verdict is the true label of
the judged answer (the recorded answer it is identified with, as the replay judge does),
flipped with probability ``1 - accuracy`` by a deterministic function of (seed, prompt,
answer), and it costs what the judge model was billed on that prompt. Per component, it
grades as the replay judge does (``replay_pool.judge.part_truths``): the components that
carry the answer take their recorded answer's label, the others are right, each flipped on
its own.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncGenerator, Sequence
from dataclasses import replace
from typing import Any

from features.components import Component
from features.errors import ProviderBadResponseError
from features.query import Message, last_user_text
from router.lifecycle.judge import ComponentVerdict, JudgeVerdict
from router.providers import ChatRequest, Completion, Delta, StreamEvent
from router.providers.openai_compat import estimate_tokens
from router.tools.replay_pool.dataset import ModelOutcome, ReplayRecord
from router.tools.replay_pool.judge import Part, identify, part_truths
from router.tools.routing_bench.matrix import RoutingMatrix

DEFAULT_CHUNK_CHARS = 16
"""Characters per streamed piece (about four tokens)."""


class PromptIndex:
    """Finds the recorded prompt a request carries: the exact text, else the recorded
    prompt the text starts with, followed by a line break."""

    def __init__(self, matrix: RoutingMatrix) -> None:
        self._rows = {p.text: i for i, p in enumerate(matrix.prompts)}
        self._records: dict[int, ReplayRecord] = {}
        self._matrix = matrix

    def find(self, text: str) -> int | None:
        """The row of the recorded prompt in ``text``, or None."""
        row = self._rows.get(text)
        if row is not None:
            return row
        at = text.find("\n")
        while at >= 0:
            row = self._rows.get(text[:at])
            if row is None:
                row = self._rows.get(text[: at + 1])
            if row is not None:
                return row
            at = text.find("\n", at + 1)
        return None

    def row_of(self, messages: Sequence[Message], arm: str) -> int:
        """The row of the request's last user message; ProviderBadResponseError when no
        recorded prompt matches (the matrix cannot answer it)."""
        row = self.find(last_user_text(messages))
        if row is None:
            raise ProviderBadResponseError(
                f"{arm}: the request carries no prompt of the routing matrix", arm=arm
            )
        return row

    def record(self, row: int) -> ReplayRecord:
        """The row as a replay record (answers and labels), for answer identification."""
        record = self._records.get(row)
        if record is None:
            matrix, prompt = self._matrix, self._matrix.prompts[row]
            record = ReplayRecord(
                prompt_id=prompt.prompt_id,
                prompt=prompt.text,
                task=prompt.task,
                split=prompt.split,
                outcomes=tuple(
                    ModelOutcome(
                        model=model,
                        response=matrix.response(row, j),
                        correct=float(matrix.quality[row, j]),
                        cost_usd=float(matrix.cost_usd[row, j]),
                    )
                    for j, model in enumerate(matrix.models)
                ),
            )
            self._records[row] = record
        return record

    def answered_by(self, row: int, text: str) -> int | None:
        """The column whose recorded answer ``text`` is (exact, contained or nearest by
        character trigrams, as the replay judge identifies answers), or None."""
        matrix = self._matrix
        for j in range(len(matrix.models)):
            if matrix.response(row, j) == text:
                return j
        outcome, _ = identify(text, self.record(row))
        return None if outcome is None else matrix.column(outcome.model)


def request_text(request: ChatRequest) -> str:
    return "\n".join(str(m.get("content", "")) for m in request.messages)


class MatrixProvider:
    """One model of the matrix behind the ``Provider`` protocol."""

    def __init__(
        self,
        matrix: RoutingMatrix,
        model: str,
        index: PromptIndex,
        *,
        chunk_chars: int = DEFAULT_CHUNK_CHARS,
    ) -> None:
        if chunk_chars < 1:
            raise ValueError("chunk_chars must be >= 1")
        self._matrix = matrix
        self._column = matrix.column(model)
        self._model = model
        self._index = index
        self._chunk = chunk_chars

    @property
    def arm_name(self) -> str:
        return self._model

    def _completion(self, request: ChatRequest) -> Completion:
        matrix, column = self._matrix, self._column
        row = self._index.row_of(request.messages, self._model)
        text = matrix.response(row, column)
        sent = request_text(request)
        return Completion(
            arm=self._model,
            text=text,
            finish_reason="stop",
            prompt_tokens=estimate_tokens(sent),
            completion_tokens=estimate_tokens(text),
            cost_usd=matrix.billed(row, column, sent),
            latency_ms=matrix.latency(row, column),
        )

    async def complete(self, request: ChatRequest) -> Completion:
        return self._completion(request)

    async def stream(self, request: ChatRequest) -> AsyncGenerator[StreamEvent, None]:
        completion = self._completion(request)
        text = completion.text
        for start in range(0, len(text), self._chunk):
            yield Delta(text[start : start + self._chunk])
        yield completion


def keeps_label(seed: int, prompt_id: str, answer: str, accuracy: float) -> bool:
    """Whether the simulated judge reports the true label of ``answer`` (else it flips it):
    true with probability ``accuracy``, the same every time for the same inputs."""
    key = f"{seed}\x1f{prompt_id}\x1f{answer.strip()}".encode()
    draw = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little") / 2**64
    return draw < accuracy


class MatrixJudge:
    """The recorded-label judge behind the router's ``Judge`` protocol."""

    def __init__(
        self, matrix: RoutingMatrix, index: PromptIndex, *, accuracy: float, seed: int
    ) -> None:
        if not 0.0 <= accuracy <= 1.0:
            raise ValueError(f"judge accuracy must lie in [0, 1], got {accuracy}")
        self._matrix = matrix
        self._index = index
        self._accuracy = accuracy
        self._seed = seed

    async def score(self, messages: Sequence[Message], answer: str) -> JudgeVerdict:
        matrix = self._matrix
        row = self._index.row_of(messages, matrix.judge_model)
        column = self._index.answered_by(row, answer)
        truth = column is not None and matrix.quality[row, column] >= 0.5
        prompt_id = matrix.prompts[row].prompt_id
        verdict = truth if keeps_label(self._seed, prompt_id, answer, self._accuracy) else not truth
        return matrix_verdict(matrix, row, verdict)

    async def score_components(
        self, messages: Sequence[Message], components: Sequence[Component]
    ) -> JudgeVerdict:
        matrix = self._matrix
        row = self._index.row_of(messages, matrix.judge_model)
        prompt_id = matrix.prompts[row].prompt_id
        parts = [Part(i, c.kind, c.text.strip()) for i, c in enumerate(components, start=1)]
        grades: list[ComponentVerdict] = []
        for component, part, (_, _, _, truth) in zip(
            components, parts, part_truths(parts, self._index.record(row)), strict=True
        ):
            keeps = keeps_label(self._seed, prompt_id, part.text, self._accuracy)
            right = truth if keeps else not truth
            grades.append(
                ComponentVerdict(
                    part.number - 1,
                    component.kind,
                    component.arm,
                    1.0 if right else 0.0,
                    f"the {component.kind} looks {'right' if right else 'wrong'}",
                )
            )
        overall = matrix_verdict(matrix, row, all(g.passed for g in grades))
        return replace(overall, components=tuple(grades))


def matrix_verdict(matrix: RoutingMatrix, row: int, right: bool) -> JudgeVerdict:
    """The benchmark judge's verdict on an answer to ``row``, billed as the judge model."""
    column = matrix.column(matrix.judge_model)
    return JudgeVerdict(
        score=1.0 if right else 0.0,
        reason="the answer looks correct" if right else "the answer looks wrong",
        arm=matrix.judge_model,
        cost_usd=float(matrix.cost_usd[row, column]),
        latency_ms=matrix.latency(row, column),
    )


def describe(matrix: RoutingMatrix, accuracy: float) -> dict[str, Any]:
    """What the judge simulation assumes, for every report."""
    return {
        "judge_model": matrix.judge_model,
        "judge_accuracy": accuracy,
        "verdict": "the judged answer's true label (quality >= 0.5), flipped with probability "
        "1 - judge_accuracy, deterministically per (seed, prompt, answer)",
        "judge_cost": f"what {matrix.judge_model} was billed on the prompt",
    }
