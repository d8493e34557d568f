"""What the replay pool answers: a request in, the recorded answer (or judge verdict) out.

No HTTP and no faults here; ``app`` adds those.
"""

from __future__ import annotations

from dataclasses import dataclass

from features.errors import NotFoundError, RequestError
from router.tools.replay_pool.dataset import ReplayDataset
from router.tools.replay_pool.json_answers import json_answer
from router.tools.replay_pool.judge import JUDGE_MODEL, ReplayJudge
from router.tools.replay_pool.matching import Match, PromptMatcher
from router.tools.replay_pool.protocol import Answer, ChatCompletionRequest, Usage, estimate_tokens

CHARS_PER_TOKEN = 4


@dataclass(frozen=True, slots=True)
class Replay:
    """An answer and the recorded prompt it was replayed from."""

    answer: Answer
    match: Match


class Replayer:
    """Answers chat requests for the recorded models and the judge."""

    def __init__(self, dataset: ReplayDataset, matcher: PromptMatcher, judge: ReplayJudge):
        self._recorded = frozenset(dataset.models)
        self._models = (*dataset.models, JUDGE_MODEL)
        self._matcher = matcher
        self._judge = judge

    @property
    def models(self) -> tuple[str, ...]:
        """The model ids served: the recorded models, then the judge."""
        return self._models

    def answer(self, request: ChatCompletionRequest, *, completion_id: str, created: int) -> Replay:
        """The recorded answer of ``request.model`` to the prompt the request maps to.

        A request for JSON (``response_format``) gets the recorded answer as JSON (see
        ``json_answers``). The answer ends before the first of the request's ``stop``
        sequences, and is cut to its token cap (four characters a token) with finish reason
        ``length``; the cost is the recorded one either way. Raises NotFoundError for a
        model that is not served and RequestError for a request without a user message.
        """
        if request.model not in self._recorded and request.model != JUDGE_MODEL:
            raise NotFoundError(
                f"The model '{request.model}' does not exist in the replay pool; "
                f"served: {', '.join(self._models)}"
            )
        try:
            text = request.prompt_text()
        except ValueError as exc:
            raise RequestError(str(exc)) from None
        if request.model == JUDGE_MODEL:
            verdict = self._judge.judge(text)
            match, content, cost_usd = verdict.match, verdict.content(), verdict.cost_usd
        else:
            match = self._matcher.match(text)
            outcome = match.record.outcome(request.model)
            content, cost_usd = outcome.response, outcome.cost_usd
            content = json_answer(content, request.response_format) or content
        finish_reason = "stop"
        content = request.before_stop(content)
        limit = request.token_limit()
        if limit is not None and estimate_tokens(content) > limit:
            content, finish_reason = content[: limit * CHARS_PER_TOKEN], "length"
        usage = Usage(
            prompt_tokens=sum(estimate_tokens(message.text()) for message in request.messages),
            completion_tokens=estimate_tokens(content),
            cost_usd=cost_usd,
        )
        answer = Answer(completion_id, created, request.model, content, finish_reason, usage)
        return Replay(answer, match)
