"""What ``/v1/chat/completions`` does with each field of a Chat Completions request.

Nothing is dropped silently: each field is **forwarded** to the arm(s) that answer, with
its meaning intact; **used by the router** (to route, to shape the response, to log); or
**refused** with a 400 that names the field and says why (some only for some values, or
for routed requests). A field this table does not know is refused too. ``FIELDS`` is the
one source of the rules, of the forwarded parameters, of the documentation table
(``docs/openai-compatibility.md``, from ``compatibility_table``) and of its tests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from features.errors import RequestError

Refusal = Callable[[Any, Mapping[str, Any], bool], str | None]
"""(value, the whole body, routed) -> why the value is refused, or None when it is not."""

MAX_CHOICES = 8
"""The largest ``n``: each choice is a run of its own, billed as one."""

DOCS_PAGE = "docs/openai-compatibility.md"


@dataclass(frozen=True)
class FieldRule:
    """One request field: whether it is forwarded, whether the router uses it, what it
    does, and (``refuse``) when it is refused."""

    name: str
    forwarded: bool
    routing: bool
    what: str
    refuse: Refusal | None = None
    refused_when: str = ""

    @property
    def treatment(self) -> str:
        """The table's second column."""
        uses = [
            label
            for label, on in (("forwarded", self.forwarded), ("used by the router", self.routing))
            if on
        ]
        if self.refuse is not None:
            uses.append(f"refused {self.refused_when}".strip())
        return ", ".join(uses)


def _always(reason: str) -> Refusal:
    return lambda value, body, routed: reason


def _when_true(reason: str) -> Refusal:
    return lambda value, body, routed: reason if value else None


def _refused_routed(reason: str) -> Refusal:
    return lambda value, body, routed: reason if routed else None


def _refused_for_arms(reason: str) -> Refusal:
    return lambda value, body, routed: None if routed else reason


def refused(name: str, reason: str) -> FieldRule:
    """A field refused whatever its value."""
    return FieldRule(name, False, False, reason[0].upper() + reason[1:] + ".", _always(reason))


def _both_caps(value: Any, body: Mapping[str, Any], routed: bool) -> str | None:
    if body.get("max_tokens") is not None:
        return "set max_tokens or max_completion_tokens, not both"
    return None


def _n(value: Any, body: Mapping[str, Any], routed: bool) -> str | None:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_CHOICES:
        return f"must be an integer from 1 to {MAX_CHOICES} (each choice is a run of its own)"
    if value > 1 and body.get("stream"):
        return "n > 1 cannot be streamed: ask for one choice per stream"
    return None


def _stream_options(value: Any, body: Mapping[str, Any], routed: bool) -> str | None:
    if not isinstance(value, dict):
        return "must be an object"
    unknown = sorted(set(value) - {"include_usage"})
    if unknown:
        return f"only include_usage is supported (got {', '.join(unknown)})"
    return None


def _tool_choice(value: Any, body: Mapping[str, Any], routed: bool) -> str | None:
    if not body.get("tools") and value not in (None, "none"):
        return "needs tools: no function was offered"
    function = value.get("function") if isinstance(value, dict) else None
    if isinstance(function, dict):
        offered = {
            (tool.get("function") or {}).get("name")
            for tool in body.get("tools") or ()
            if isinstance(tool, dict)
        }
        if function.get("name") not in offered:
            return f"forces {function.get('name')!r}, which tools does not offer"
    return None


def _metadata(value: Any, body: Mapping[str, Any], routed: bool) -> str | None:
    if not isinstance(value, dict) or len(value) > 16:
        return "must be an object of at most 16 string values"
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        return "must be an object of at most 16 string values"
    return None


def _modalities(value: Any, body: Mapping[str, Any], routed: bool) -> str | None:
    if value != ["text"]:
        return "only text output is supported"
    return None


def _penalty(value: Any, body: Mapping[str, Any], routed: bool) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not -2 <= value <= 2:
        return "must be a number from -2 to 2"
    return None


def _stop(value: Any, body: Mapping[str, Any], routed: bool) -> str | None:
    stops = [value] if isinstance(value, str) else value
    if not isinstance(stops, list) or not 1 <= len(stops) <= 4:
        return "must be a string or a list of 1 to 4 strings"
    if not all(isinstance(s, str) and s for s in stops):
        return "must be a string or a list of 1 to 4 non-empty strings"
    return None


FIELDS: tuple[FieldRule, ...] = (
    FieldRule(
        "model",
        False,
        True,
        "`signalroute/<profile>` routes the request; an arm's name sends it to that arm. "
        "The response's `model` is the arm that answered.",
    ),
    FieldRule(
        "messages",
        True,
        True,
        "Forwarded as given, every role (`system`, `developer`, `user`, `assistant` with "
        "`tool_calls`, `tool` with `tool_call_id`); the query signals are read from it.",
    ),
    FieldRule(
        "stream",
        False,
        True,
        "The router always streams from the arms (to watch the answer); the client gets a "
        "stream as the profile's `stream` option says.",
    ),
    FieldRule(
        "stream_options",
        False,
        True,
        "`include_usage` adds the final usage chunk.",
        _stream_options,
        "for other keys",
    ),
    FieldRule(
        "max_tokens",
        True,
        True,
        "Forwarded; sizes the context-window and cost checks. An answer it cut ends with "
        "`finish_reason: length`.",
    ),
    FieldRule(
        "max_completion_tokens",
        True,
        True,
        "As `max_tokens`, forwarded under its own name.",
        _both_caps,
        "together with max_tokens",
    ),
    FieldRule("temperature", True, False, "Forwarded."),
    FieldRule("top_p", True, False, "Forwarded."),
    FieldRule(
        "stop", True, False, "Forwarded; the answer ends before the sequence.", _stop, "if invalid"
    ),
    FieldRule("seed", True, False, "Forwarded (to every run of a routed request)."),
    FieldRule("presence_penalty", True, False, "Forwarded.", _penalty, "outside [-2, 2]"),
    FieldRule("frequency_penalty", True, False, "Forwarded.", _penalty, "outside [-2, 2]"),
    FieldRule(
        "logit_bias",
        True,
        False,
        "Forwarded to a named arm.",
        _refused_routed(
            "token ids are one tokenizer's: name an arm (model) to use logit_bias, "
            "a route profile may send the request to any of its arms"
        ),
        "for route profiles",
    ),
    FieldRule(
        "n",
        False,
        True,
        f"Each choice is a run of its own (routed: a request of its own, with its own id in "
        f"`signalroute.choices`); at most {MAX_CHOICES}.",
        _n,
        "above 8, or with stream",
    ),
    FieldRule(
        "logprobs",
        False,
        False,
        "`false` is accepted.",
        _when_true(
            "token log-probabilities are not carried: the router reads each run as it streams "
            "and may cut or replace it"
        ),
        "when true",
    ),
    refused("top_logprobs", "token log-probabilities are not carried (see logprobs)"),
    FieldRule(
        "response_format",
        True,
        True,
        "Forwarded to arms with the `json` capability; arms without it get the format as an "
        "instruction in the prompt. The answer is validated against it; one that fails it "
        "is returned with `finish_reason: format_failed`.",
    ),
    FieldRule(
        "tools",
        True,
        True,
        "Forwarded (each a `function` with a unique name, else a 400); masks arms without "
        "the `tools` capability. Each call of the answer is "
        "checked (a function offered, arguments that are JSON and satisfy its `parameters`, "
        "`tool_choice` obeyed); a failed call is rewarded 0 and escalated with the error "
        "(to an arm that calls tools, when no configured target can); in a stream, arguments "
        "that can no longer become JSON cut the run. An answer that still fails is delivered "
        "with `signalroute.format_error` naming the check, and `finish_reason: format_failed` "
        "when it calls nothing.",
    ),
    FieldRule(
        "tool_choice",
        True,
        False,
        "Forwarded with `tools`; a forced function no arm with `tools` can serve is a 422.",
        _tool_choice,
        "without tools, or forcing a function not offered",
    ),
    FieldRule("parallel_tool_calls", True, False, "Forwarded with `tools`."),
    FieldRule(
        "reasoning_effort",
        True,
        True,
        "Forwarded; masks arms without the `reasoning` capability.",
    ),
    FieldRule(
        "user",
        True,
        True,
        "Forwarded; the per-user history signals and the logged request use it.",
    ),
    FieldRule(
        "metadata",
        False,
        True,
        "Kept with the logged request (`GET /requests/{id}`), not sent to providers.",
        _metadata,
        "if not 16 string values at most",
    ),
    FieldRule("prompt_cache_key", True, False, "Forwarded."),
    FieldRule("safety_identifier", True, False, "Forwarded."),
    FieldRule(
        "store",
        False,
        False,
        "`false` is accepted: signalroute logs every request itself.",
        _when_true("completions are not stored at the providers: signalroute logs them itself"),
        "when true",
    ),
    FieldRule(
        "modalities",
        False,
        False,
        '`["text"]` is accepted.',
        _modalities,
        "for audio",
    ),
    refused("audio", "audio output is not supported"),
    refused("prediction", "predicted outputs are not supported"),
    refused("service_tier", "a provider's service tier is not routed: the arms are the tiers"),
    refused("web_search_options", "web search is not supported"),
    refused("verbosity", "no arm declares verbosity"),
    refused("functions", "deprecated by OpenAI: send tools instead"),
    refused("function_call", "deprecated by OpenAI: send tool_choice instead"),
    FieldRule(
        "constraints",
        False,
        True,
        "signalroute's: `max_cost_usd`, `max_latency_ms`, `capabilities` mask arms, as on "
        "`/route-and-run`.",
        _refused_for_arms(
            "constraints choose among arms: name a route profile (signalroute/<name>)"
        ),
        "for a named arm",
    ),
    FieldRule(
        "session",
        False,
        True,
        "signalroute's: the session whose spend counts against the session budget.",
    ),
    FieldRule(
        "hints",
        False,
        True,
        "signalroute's: descriptors of the request the routing policies learn from.",
    ),
    FieldRule("tenant", False, True, "signalroute's: the tenant, in local mode (see Tenants)."),
)

RULES: Mapping[str, FieldRule] = {rule.name: rule for rule in FIELDS}

CHAT_REQUEST_FIELDS = frozenset(
    {"model", "messages", "max_tokens", "temperature", "response_format"}
)
"""Forwarded fields the provider request carries as its own (the rest go in ``params``)."""


def check_fields(body: Mapping[str, Any], *, routed: bool) -> None:
    """Raise RequestError naming every field of ``body`` (as sent) that is refused."""
    problems = []
    for name, value in body.items():
        rule = RULES.get(name)
        if rule is None:
            problems.append(
                f"{name}: not a Chat Completions field signalroute knows; the fields it "
                f"serves are listed in {DOCS_PAGE}"
            )
            continue
        if rule.refuse is not None and value is not None:
            reason = rule.refuse(value, body, routed)
            if reason is not None:
                problems.append(f"{name}: refused: {reason}")
    if problems:
        raise RequestError("; ".join(problems))


def forwarded_params(body: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of ``body`` (as sent) forwarded to arms beside the provider request's own."""
    return {
        name: value
        for name, value in body.items()
        if value is not None
        and name in RULES
        and RULES[name].forwarded
        and name not in CHAT_REQUEST_FIELDS
    }


def compatibility_table() -> str:
    """The Markdown table of ``FIELDS`` (the documentation page holds it verbatim)."""
    lines = ["| field | treatment | what signalroute does |", "|---|---|---|"]
    for rule in FIELDS:
        lines.append(f"| `{rule.name}` | {rule.treatment} | {rule.what} |")
    return "\n".join(lines) + "\n"
