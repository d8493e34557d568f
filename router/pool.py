"""The model pool: the arms the router may choose from, loaded from a validated YAML file.

A pool file lists arms (name, OpenAI-compatible base URL, model id, prices, context window,
capability tags), the default objective weights and optional route profiles (an arm subset
and an objective that clients name as the model ``signalroute/<profile>``). A bad file stops
the service with a message that names the file, the field and the problem.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from features.errors import ConfigError
from router.pool_problems import (
    Problem,
    describe_problems,
    reference_problems,
    validation_problems,
)

SELF_PLACEHOLDER = "{self}"
"""In a pool file, ``{self}`` in a base URL stands for the router's own address."""

PROFILE_PREFIX = "signalroute/"
"""Model ids that start with this name a route profile, not an arm."""

AUTO_PROFILE = "auto"
"""The profile that routes over every arm with the pool's objective."""

NonNegative = Annotated[float, Field(ge=0)]

ARM_NAME = re.compile(r"^[A-Za-z0-9._/:@-]+$")
"""What an arm's name may hold: provider model ids (``org/model``, ``model:tag``,
Vertex-style ``model@version``)."""


class Arm(BaseModel):
    """One model the router can send work to."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(
        min_length=1,
        pattern=ARM_NAME.pattern,
        description="The arm's name in traces, metrics and /v1/models (clients may name it as "
        "the model to bypass routing).",
    )
    base_url: str = Field(
        min_length=1,
        description="The OpenAI-compatible API's base URL (http:// or https://; {self} stands "
        "for this router's own address).",
    )
    model: str = Field(min_length=1, description="Model id sent to the provider.")
    api_key_env: str | None = Field(
        default=None, description="Name of the environment variable holding the API key."
    )
    input_usd_per_mtok: NonNegative = Field(
        default=0.0,
        description="List price of input tokens, USD per million (used when the provider "
        "reports no cost).",
    )
    output_usd_per_mtok: NonNegative = Field(
        default=0.0, description="List price of output tokens, USD per million."
    )
    context_window: int = Field(
        default=8192, gt=0, description="Tokens the model takes; a longer prompt masks the arm."
    )
    capabilities: frozenset[str] = Field(
        default=frozenset(),
        description="What the arm can do: code, json, tools, vision, reasoning, ...; a "
        "request that needs one masks the arms without it.",
    )
    serves_only: frozenset[str] = Field(
        default=frozenset(),
        description="When set, the arm serves only requests that need one of these "
        "capabilities (a tool-calling model kept for agent traffic: [tools]).",
    )
    timeout_s: float = Field(default=60.0, gt=0, description="Timeout of one call (seconds).")

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not (value.startswith(("http://", "https://")) or value.startswith(SELF_PLACEHOLDER)):
            raise ValueError("must start with http:// or https:// (or {self} for this router)")
        return value.rstrip("/")

    def api_key(self) -> str | None:
        """The API key from the named environment variable (None when no variable is named)."""
        if self.api_key_env is None:
            return None
        return os.environ.get(self.api_key_env)

    def price_usd(self, prompt_tokens: int, completion_tokens: int) -> float:
        """List-price cost of a call with these token counts."""
        return (
            prompt_tokens * self.input_usd_per_mtok + completion_tokens * self.output_usd_per_mtok
        ) / 1e6


class Objective(BaseModel):
    """Reward weights: ``quality - lambda_cost * c / (c + cost_ref) - lambda_latency * l / (l +
    latency_ref)`` (``learner.reward``): near zero, spending ``cost_ref_usd`` costs
    ``lambda_cost`` of quality; the penalty keeps growing with every dollar."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    lambda_cost: float = Field(
        default=0.3,
        ge=0,
        description="Weight of the cost term: near zero, spending cost_ref_usd costs this much "
        "quality. Raise it to save more.",
    )
    lambda_latency: float = Field(
        default=0.05,
        ge=0,
        description="Weight of the latency term (one half at latency_ref_ms).",
    )
    latency_ref_ms: float | None = Field(
        default=None,
        gt=0,
        description="Latency budget (ms): a request this slow gives up lambda_latency / 2 of "
        "quality. Unset: SIGNALROUTE_LATENCY_REF_MS.",
    )

    def latency_reference_ms(self, default_ms: float) -> float:
        """The latency reference of the reward: this objective's own, else ``default_ms``."""
        return self.latency_ref_ms if self.latency_ref_ms is not None else default_ms


class StageDefaults(BaseModel):
    """The pool's default lifecycle options; requests may override each of them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    in_generation: bool = Field(
        default=True, description="Watch the stream; cut a run that goes wrong and re-route."
    )
    escalation: bool = Field(
        default=True, description="Let the post-generation policy escalate a doubtful answer."
    )
    components: bool = Field(
        default=True,
        description="Rewrite a failed part (a code block that does not parse, prose that "
        "refuses) with another arm.",
    )
    judge: Literal["always", "on_doubt", "sampled", "never", "learned"] = Field(
        default="on_doubt",
        description="When the judge grades an answer: always, on_doubt (no validator could "
        "check the content), sampled (judge_sample_rate of answers), never, or learned (the "
        "judge gate learns per answer whether a verdict is worth its price, starting from "
        "judge_rule).",
    )
    judge_rule: Literal["always", "on_doubt"] = Field(
        default="on_doubt",
        description="With judge: learned, the rule the judge gate starts from and keeps until "
        "its evidence says skipping (or asking) earns more.",
    )
    judge_sample_rate: float = Field(
        default=0.1, ge=0, le=1, description="Share of answers judged with judge: sampled."
    )
    holdback_chars: int = Field(
        default=200,
        ge=0,
        description="Characters a stream holds back until they passed the detectors, so a "
        "run cut early is never seen by the client.",
    )
    stall_ms: float = Field(
        default=10_000.0, gt=0, description="A run with no token for this long is cut."
    )
    max_switches: int = Field(
        default=2, ge=0, description="Most runs cut and re-routed during generation in one request."
    )
    max_escalations: int = Field(
        default=1, ge=1, le=5, description="Longest escalation chain of one answer."
    )
    escalation_ladder: bool = Field(
        default=True,
        description="With max_escalations above 1, a chain's first steps go to a cheaper "
        "escalation target (the one whose escalations earned the most) and the strongest is "
        "kept for the last step; off: every step's rule goes to the target whose escalations "
        "earned the most (the dearest until there is evidence).",
    )
    escalation_context: Literal["answer", "reasons"] = Field(
        default="answer",
        description="What an escalated-to arm is sent besides the request: the rejected "
        "answer and the reasons it was rejected (answer), or the reasons alone (reasons: a "
        "shorter prompt, the rejected answer's tokens not billed again at the dearer arm's "
        "price).",
    )
    judge_components: bool = Field(
        default=False,
        description="Grade an answer's parts (code blocks, prose) one by one; when the judge "
        "fails the answer but passes some parts, re-route only the failed parts (with "
        "components on) instead of escalating the whole answer.",
    )


class Profile(BaseModel):
    """A route profile: the arms routing may draw from, the objective it optimises and the
    stage options it runs with.

    Clients name it as the model ``signalroute/<name>``. Unset fields fall back to the pool:
    every arm, the pool's objective, the pool's stage options (``stages`` overrides only the
    options it sets). ``stream`` says how an OpenAI-compatible stream is fed: ``final``
    sends the answer once every stage accepted it (an OpenAI client cannot take back text
    it was sent); ``live`` forwards text as it is generated and marks a replacement with a
    ``signalroute.switch`` chunk, which a plain OpenAI client shows after the earlier text.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    description: str | None = Field(default=None, description="Shown in /v1/models.")
    arms: tuple[str, ...] | None = Field(
        default=None, min_length=1, description="The arms it may draw (unset: every arm)."
    )
    objective: Objective | None = Field(default=None, description="Replaces the pool's objective.")
    stages: StageDefaults | None = Field(
        default=None, description="Overrides the stage options it sets."
    )
    stream: Literal["final", "live"] = Field(
        default="final",
        description="final: stream the answer once every stage accepted it; live: forward "
        "text as it is generated, marking a replacement with a signalroute.switch chunk.",
    )
    conversation: Literal["prefer", "pin", "free"] = Field(
        default="prefer",
        description="A turn and its conversation's previous arm: prefer (leaving it costs "
        "switch_cost of reward), pin (keep it while eligible) or free (ignore it).",
    )
    switch_cost: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="Reward a turn loses by leaving its conversation's previous arm.",
    )

    def stage_values(self, defaults: StageDefaults) -> dict[str, Any]:
        """``defaults`` with the options this profile sets on top."""
        values = defaults.model_dump()
        if self.stages is not None:
            values.update(self.stages.model_dump(include=self.stages.model_fields_set))
        return values


ProfileName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")]


class Pool(BaseModel):
    """The arms of the pool, in a fixed order (the action order of every policy).

    ``judge`` is the model that grades answers (not an arm: it is never routed to);
    ``escalation_targets`` are the arms a doubtful answer may be escalated to (default: every
    arm, dearest first; see ``escalation_arms``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    arms: tuple[Arm, ...] = Field(
        min_length=1,
        description="The models routing chooses among.",
    )
    objective: Objective = Field(
        default=Objective(), description="Default reward weights; requests may override them."
    )
    judge: Arm | None = Field(
        default=None, description="The model that grades answers (never routed to)."
    )
    escalation_targets: tuple[str, ...] = Field(
        default=(),
        description="Arms a doubtful answer may be escalated to: the top of the ladder first "
        "(usually the strongest arm), then the rungs a chain climbs before it (default: every "
        "arm not cheaper than the answering one, dearest first, then by value); an answer of "
        "the first is not escalated, and a chain of escalations ends once it has reached every "
        "one of them that can serve the request. A rung earns its place by being right where "
        "the answers below it fail, not by its own average: `signalroute bench --matrix` "
        "prints the ladders it chooses on a matrix's train split.",
    )
    stages: StageDefaults = Field(
        default=StageDefaults(),
        description="Default stage options; requests and profiles may override each of them.",
    )
    profiles: dict[ProfileName, Profile] = Field(
        default_factory=dict,
        description="Route profiles by name; clients name them as the model signalroute/<name>.",
    )

    @model_validator(mode="after")
    def _known_references(self) -> Pool:
        problems = reference_problems(
            self.names,
            self.escalation_targets,
            {name: profile.arms or () for name, profile in self.profiles.items()},
        )
        if problems:
            raise ValueError("; ".join(f"{p.where}: {p.message}" for p in problems))
        return self

    def escalation_arms(self) -> tuple[str, ...]:
        """The configured escalation targets in their order, or by default every arm, dearest
        first (by output, then input price). Price ranks the default targets only until there
        is evidence: the escalation stage's rule escalates to the target whose escalations
        have earned the most reward (quality for the cost) once it has enough of them, so a
        dearer model that answers worse stops being the target of choice."""
        return self.escalation_targets or self.arms_by_price()

    def arms_by_price(self) -> tuple[str, ...]:
        """Every arm, dearest first (by output, then input price, then name)."""
        ranked = sorted(
            self.arms, key=lambda a: (-a.output_usd_per_mtok, -a.input_usd_per_mtok, a.name)
        )
        return tuple(arm.name for arm in ranked)

    @field_validator("arms")
    @classmethod
    def _unique_names(cls, arms: tuple[Arm, ...]) -> tuple[Arm, ...]:
        names = [arm.name for arm in arms]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"arm names must be unique; repeated: {', '.join(duplicates)}")
        reserved = [n for n in names if n.startswith(PROFILE_PREFIX)]
        if reserved:
            raise ValueError(
                f"arm names may not start with {PROFILE_PREFIX!r} (it names route profiles): "
                + ", ".join(reserved)
            )
        return arms

    @property
    def profile_ids(self) -> tuple[str, ...]:
        """The model ids of the route profiles: ``signalroute/auto`` first, then the file's."""
        names = [AUTO_PROFILE, *(name for name in self.profiles if name != AUTO_PROFILE)]
        return tuple(PROFILE_PREFIX + name for name in names)

    def profile(self, model: str) -> Profile | None:
        """The profile that model id ``model`` names, or None when it names none.

        ``signalroute/auto`` is every arm with the pool's objective, unless the file
        defines a profile called ``auto``.
        """
        if not model.startswith(PROFILE_PREFIX):
            return None
        name = model[len(PROFILE_PREFIX) :]
        if name in self.profiles:
            return self.profiles[name]
        return Profile() if name == AUTO_PROFILE else None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(arm.name for arm in self.arms)

    def arm(self, name: str) -> Arm:
        """The arm called ``name``; KeyError when the pool has none."""
        for arm in self.arms:
            if arm.name == name:
                return arm
        raise KeyError(name)

    def uses_self(self, path: str) -> bool:
        """Whether an arm or the judge points at this router's own ``path``."""
        prefix = f"{SELF_PLACEHOLDER}{path}"
        judge = [self.judge] if self.judge is not None else []
        return any(arm.base_url.startswith(prefix) for arm in [*self.arms, *judge])

    def bind_self(self, self_url: str) -> Pool:
        """Replace the ``{self}`` placeholder in base URLs with the router's own address."""

        def bind(arm: Arm) -> Arm:
            return arm.model_copy(
                update={"base_url": arm.base_url.replace(SELF_PLACEHOLDER, self_url)}
            )

        judge = bind(self.judge) if self.judge is not None else None
        return self.model_copy(update={"arms": tuple(map(bind, self.arms)), "judge": judge})


def parse_pool(document: Any, *, source: str) -> Pool:
    """Validate a parsed pool document. A bad one raises ConfigError listing every problem
    found (``source``, the field, what is wrong), so that one edit can fix them all."""
    pool, problems = validate_pool(document)
    if pool is None:
        raise ConfigError(describe_problems(source, problems))
    return pool


def validate_pool(document: Any) -> tuple[Pool | None, tuple[Problem, ...]]:
    """The pool a parsed document describes, or None and every problem found in it.

    Field problems are all reported together. Cross-references (escalation targets and
    profile arms that name no arm) are checked on the raw document as well, so they are
    reported beside field problems rather than after them are fixed.
    """
    try:
        return Pool.model_validate(document), ()
    except ValidationError as exc:
        return None, validation_problems(exc, document, allowed=_FIELDS)


def read_pool_document(path: Path) -> Any:
    """The parsed YAML of a pool file; ConfigError when it cannot be read or parsed."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read pool file {path}: {exc.strerror}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None


def load_pool(path: Path) -> Pool:
    """Read and validate a pool file."""
    return parse_pool(read_pool_document(path), source=str(path))


def unset_key_variables(pool: Pool, environ: Mapping[str, str] = os.environ) -> tuple[Problem, ...]:
    """Arms (and the judge) that name an ``api_key_env`` variable ``environ`` does not set:
    their calls would go out without a key. A warning, not an error: a local model server
    may need no key at all, and the variable may be set for the service but not here."""
    members = [(f"arms.{i}", arm) for i, arm in enumerate(pool.arms)]
    if pool.judge is not None:
        members.append(("judge", pool.judge))
    return tuple(
        Problem(
            where=f"{where}.api_key_env",
            message=f"{arm.name}: the environment variable {arm.api_key_env} is not set, so "
            "its calls carry no API key",
            severity="warning",
        )
        for where, arm in members
        if arm.api_key_env is not None and not environ.get(arm.api_key_env)
    )


_FIELDS: dict[str, tuple[str, ...]] = {
    "": tuple(Pool.model_fields),
    "arm": tuple(Arm.model_fields),
    "objective": tuple(Objective.model_fields),
    "stages": tuple(StageDefaults.model_fields),
    "profile": tuple(Profile.model_fields),
}
"""The fields each part of a pool file may hold, for "did you mean" hints."""


def demo_pool() -> Pool:
    """The pool of the replay models (RouterBench's 11, BFCL's 3 tool-calling ones), served
    by this router itself."""
    text = resources.files("router").joinpath("demo_pool.yaml").read_text(encoding="utf-8")
    return parse_pool(yaml.safe_load(text), source="demo_pool.yaml")
