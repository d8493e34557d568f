"""The model pool: the arms the router may choose from, loaded from a validated YAML file.

A pool file lists arms (name, OpenAI-compatible base URL, model id, prices, context window,
capability tags), the default objective weights and optional route profiles (an arm subset
and an objective that clients name as the model ``signalroute/<profile>``). A bad file stops
the service with a message that names the file, the field and the problem.
"""

from __future__ import annotations

import os
import re
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

    name: str = Field(min_length=1, pattern=ARM_NAME.pattern)
    base_url: str = Field(min_length=1)
    model: str = Field(min_length=1, description="Model id sent to the provider.")
    api_key_env: str | None = Field(
        default=None, description="Name of the environment variable holding the API key."
    )
    input_usd_per_mtok: NonNegative = 0.0
    output_usd_per_mtok: NonNegative = 0.0
    context_window: int = Field(default=8192, gt=0)
    capabilities: frozenset[str] = frozenset()
    serves_only: frozenset[str] = Field(
        default=frozenset(),
        description="When set, the arm serves only requests that need one of these "
        "capabilities (a tool-calling model kept for agent traffic: [tools]).",
    )
    timeout_s: float = Field(default=60.0, gt=0)

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

    lambda_cost: float = Field(default=0.3, ge=0)
    lambda_latency: float = Field(default=0.05, ge=0)


class StageDefaults(BaseModel):
    """The pool's default lifecycle options; requests may override each of them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    in_generation: bool = True
    escalation: bool = True
    components: bool = True
    judge: Literal["always", "on_doubt", "sampled", "never"] = "on_doubt"
    judge_sample_rate: float = Field(default=0.1, ge=0, le=1)
    holdback_chars: int = Field(default=200, ge=0)
    stall_ms: float = Field(default=10_000.0, gt=0)
    max_switches: int = Field(default=2, ge=0)
    max_escalations: int = Field(default=1, ge=1, le=5)
    judge_components: bool = False


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

    description: str | None = None
    arms: tuple[str, ...] | None = Field(default=None, min_length=1)
    objective: Objective | None = None
    stages: StageDefaults | None = None
    stream: Literal["final", "live"] = "final"
    conversation: Literal["prefer", "pin", "free"] = "prefer"
    switch_cost: float = Field(default=0.05, ge=0, le=1)

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

    arms: tuple[Arm, ...] = Field(min_length=1)
    objective: Objective = Objective()
    judge: Arm | None = None
    escalation_targets: tuple[str, ...] = ()
    stages: StageDefaults = StageDefaults()
    profiles: dict[ProfileName, Profile] = Field(default_factory=dict)
    """Route profiles by name; clients name them as the model ``signalroute/<name>``."""

    @model_validator(mode="after")
    def _known_targets(self) -> Pool:
        names = {arm.name for arm in self.arms}
        unknown = [t for t in self.escalation_targets if t not in names]
        if unknown:
            raise ValueError(f"escalation_targets name unknown arms: {', '.join(unknown)}")
        return self

    def escalation_arms(self) -> tuple[str, ...]:
        """The configured escalation targets in their order, or by default every arm, dearest
        first (by output, then input price). Price ranks the default targets only until there
        is evidence: the escalation stage's rule escalates to the target whose escalations
        have earned the most reward (quality for the cost) once it has enough of them, so a
        dearer model that answers worse stops being the target of choice."""
        if self.escalation_targets:
            return self.escalation_targets
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

    @model_validator(mode="after")
    def _profile_arms_known(self) -> Pool:
        known = set(self.names)
        for name, profile in self.profiles.items():
            arms = profile.arms or ()
            unknown = [arm for arm in arms if arm not in known]
            if unknown:
                raise ValueError(
                    f"profile {name!r} names arms the pool does not have: {', '.join(unknown)}"
                )
            if len(set(arms)) != len(arms):
                raise ValueError(f"profile {name!r} lists an arm twice")
        return self

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
    """Validate a parsed pool document; errors name ``source``, the field and the problem."""
    try:
        return Pool.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
        raise ConfigError(f"{source}: {where}: {first['msg']}{more}") from None


def load_pool(path: Path) -> Pool:
    """Read and validate a pool file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read pool file {path}: {exc.strerror}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return parse_pool(document, source=str(path))


def demo_pool() -> Pool:
    """The pool of the replay models (RouterBench's 11, BFCL's 3 tool-calling ones), served
    by this router itself."""
    text = resources.files("router").joinpath("demo_pool.yaml").read_text(encoding="utf-8")
    return parse_pool(yaml.safe_load(text), source="demo_pool.yaml")
