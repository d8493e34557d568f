"""Tool-calling replay arms: BFCL's native function-calling configurations over the real protocol.

Each ``-FC`` configuration of the recorded BFCL run (``router.tools.replay_pool.bfcl``) is a
model of the replay pool. A chat request with ``tools`` is mapped to the recorded BFCL prompt by its
last user message, as the other replay arms map theirs (:class:`PromptMatcher`: exact, then a
recorded prompt contained in the text, then the nearest; among prompts with the same
question, the one whose functions the request offers), and answered with what the
configuration answered there:

- its recorded calls as OpenAI ``tool_calls`` (``finish_reason`` ``tool_calls``), each call
  named as the request offered the function: BFCL turned dots in names into ``_``, so a
  recorded ``math_factorial`` is sent as the offered ``math.factorial`` when that is what the
  request offered (a recorded name nothing offered is sent as recorded: the model called a
  function it was not given);
- or its recorded text, when it answered in text (``finish_reason`` ``stop``).

Usage is the recorded token counts; the cost is those tokens at BFCL's price for the
configuration. A ``max_tokens`` cap below the recorded output cuts the answer (calls'
arguments included) at four characters a token, ``finish_reason`` ``length``.

What has no recording is answered plainly, never made up as a call: without ``tools`` (or
with ``tool_choice`` ``none``) the arm answers the recorded output as text (a call record as
its JSON); after tool results (the last message has role ``tool``; BFCL recorded one turn)
it answers in text with the results it was given.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from features.errors import NotFoundError, RequestError
from features.tool_calls import ToolCall
from router.providers.base import FunctionCall
from router.settings import ReplaySettings
from router.tools.replay_pool.bfcl import BfclAnswer, BfclCase, BfclDataset, load_bfcl
from router.tools.replay_pool.dataset import ModelOutcome, ReplayDataset, ReplayRecord
from router.tools.replay_pool.matching import Match, PromptMatcher
from router.tools.replay_pool.protocol import Answer, ChatCompletionRequest, Usage
from router.tools.replay_pool.replayer import CHARS_PER_TOKEN, Replay

NATIVE_MARK = "-FC"
"""BFCL names its native function-calling configurations ``<model>-FC`` (or ``-FC-Any``)."""


def native_models(dataset: BfclDataset) -> tuple[str, ...]:
    """The dataset's native function-calling configurations, in dataset order."""
    return tuple(model for model in dataset.models if NATIVE_MARK in model)


def as_records(dataset: BfclDataset, models: Sequence[str]) -> ReplayDataset:
    """The BFCL prompts as replay records (question as prompt, category as task, each
    model's answer as text), so the replay pool's prompt matcher can map requests to them."""
    records = tuple(
        ReplayRecord(
            prompt_id=case.prompt_id,
            prompt=case.question,
            task=case.category,
            split="test",
            outcomes=tuple(
                ModelOutcome(
                    model=model,
                    response=dataset.answer(case.prompt_id, model).text(),
                    correct=1.0 if dataset.answer(case.prompt_id, model).correct else 0.0,
                    cost_usd=dataset.cost_usd(case, dataset.answer(case.prompt_id, model)),
                )
                for model in models
            ),
        )
        for case in dataset
    )
    return ReplayDataset(models=tuple(models), records=records)


def offered_name(recorded: str, offered: Sequence[str]) -> str:
    """The offered function a recorded call names: the same name, else the offered name
    whose dots BFCL turned into the recorded ``_``; else the recorded name."""
    if recorded in offered:
        return recorded
    return next((name for name in offered if name.replace(".", "_") == recorded), recorded)


def call_id(completion_id: str, index: int) -> str:
    """A call id unique per answer and call, the same every time for the same pair."""
    digest = hashlib.blake2b(f"{completion_id}\x1f{index}".encode(), digest_size=12).hexdigest()
    return f"call_{digest}"


def _capped(calls: Sequence[ToolCall], limit_chars: int) -> tuple[list[ToolCall], bool]:
    """The calls whose arguments fit in ``limit_chars`` in all (the last one cut)."""
    kept: list[ToolCall] = []
    left = limit_chars
    for call in calls:
        if left <= 0:
            return kept, True
        if len(call.arguments) > left:
            kept.append(ToolCall(call.name, call.arguments[:left]))
            return kept, True
        kept.append(call)
        left -= len(call.arguments)
    return kept, False


class ToolArms:
    """Answers chat requests for the native function-calling configurations of BFCL."""

    def __init__(self, dataset: BfclDataset, matcher: PromptMatcher | None = None) -> None:
        self._dataset = dataset
        self._models = native_models(dataset)
        if matcher is None:
            matcher = PromptMatcher(as_records(dataset, self._models))
        self._matcher = matcher
        self._cases = {case.prompt_id: case for case in dataset}
        self._same_question: dict[str, list[BfclCase]] = {}
        for case in dataset:
            self._same_question.setdefault(case.question.strip(), []).append(case)

    @property
    def models(self) -> tuple[str, ...]:
        return self._models

    def __len__(self) -> int:
        return len(self._dataset)

    def match(self, request: ChatCompletionRequest) -> tuple[Match, BfclCase]:
        """The recorded prompt of ``request`` and its case (see the module contract)."""
        try:
            text = request.prompt_text()
        except ValueError as exc:
            raise RequestError(str(exc)) from None
        match = self._matcher.match(text)
        case = self._cases[match.record.prompt_id]
        twins = self._same_question.get(case.question.strip(), [case])
        if len(twins) > 1:
            offered = {name.replace(".", "_") for name in request.tool_names()}

            def overlap(candidate: BfclCase) -> int:
                names = {str(f["name"]).replace(".", "_") for f in candidate.functions}
                return len(names & offered) - len(names ^ offered)

            case = max(twins, key=overlap)  # first of the best, in dataset order
        return match, case

    def answer(self, request: ChatCompletionRequest, *, completion_id: str, created: int) -> Replay:
        """What ``request.model`` answered to the request's recorded prompt. Raises
        NotFoundError for a model that is not served and RequestError for a request without
        a user message."""
        if request.model not in self._models:
            raise NotFoundError(
                f"The model '{request.model}' is not a tool-calling replay arm; served: "
                f"{', '.join(self._models)}"
            )
        match, case = self.match(request)
        recorded = self._dataset.answer(case.prompt_id, request.model)
        input_tokens, output_tokens, _ = self._dataset.tokens(case, recorded)
        cost_usd = self._dataset.cost_usd(case, recorded)
        content, calls = self._reply(request, recorded)
        finish_reason = "tool_calls" if calls else "stop"
        limit = request.token_limit()
        if limit is not None and output_tokens > limit:
            if calls:
                calls, _ = _capped(calls, limit * CHARS_PER_TOKEN)
            content = content[: limit * CHARS_PER_TOKEN]
            finish_reason = "length"
            output_tokens = min(output_tokens, limit)
        offered = request.tool_names()
        tool_calls = tuple(
            FunctionCall(
                call_id(completion_id, i), offered_name(call.name, offered), call.arguments
            )
            for i, call in enumerate(calls)
        )
        usage = Usage(
            prompt_tokens=round(input_tokens),
            completion_tokens=round(output_tokens),
            cost_usd=cost_usd,
        )
        answer = Answer(
            completion_id, created, request.model, content, finish_reason, usage, tool_calls
        )
        record = match.record if match.record.prompt_id == case.prompt_id else self._record(case)
        return Replay(answer, Match(record, match.kind, match.similarity))

    def _reply(
        self, request: ChatCompletionRequest, recorded: BfclAnswer
    ) -> tuple[str, list[ToolCall]]:
        """The text and the calls to answer with (see the module contract)."""
        last = request.messages[-1]
        if last.role == "tool":
            results = [m.text() for m in request.messages if m.role == "tool"]
            return "The tools returned: " + json.dumps(results), []
        calls = recorded.native_calls()
        if not request.tools or request.tool_choice == "none" or calls is None:
            return recorded.text(), []
        return "", list(calls)

    def _record(self, case: BfclCase) -> ReplayRecord:
        return self._matcher.dataset.get(case.prompt_id)


def load_tool_arms(settings: ReplaySettings) -> ToolArms | None:
    """The tool-calling arms of the BFCL data the settings point at (None without it).
    ConfigError when a configured folder does not hold it."""
    path = settings.bfcl_data_path()
    return None if path is None else ToolArms(load_bfcl(path))
