"""The model pool: the arms the router may choose from, loaded from a validated YAML file.

A pool file lists arms (name, OpenAI-compatible base URL, model id, prices, context window,
capability tags) and the default objective weights. A bad file stops the service with a
message that names the file, the field and the problem.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from features.errors import ConfigError

SELF_PLACEHOLDER = "{self}"
"""In a pool file, ``{self}`` in a base URL stands for the router's own address."""

NonNegative = Annotated[float, Field(ge=0)]


class Arm(BaseModel):
    """One model the router can send work to."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9._/:-]+$")
    base_url: str = Field(min_length=1)
    model: str = Field(min_length=1, description="Model id sent to the provider.")
    api_key_env: str | None = Field(
        default=None, description="Name of the environment variable holding the API key."
    )
    input_usd_per_mtok: NonNegative = 0.0
    output_usd_per_mtok: NonNegative = 0.0
    context_window: int = Field(default=8192, gt=0)
    capabilities: frozenset[str] = frozenset()
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
    """Reward weights: quality - lambda_cost * norm. cost - lambda_latency * norm. latency."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    lambda_cost: float = Field(default=0.3, ge=0)
    lambda_latency: float = Field(default=0.05, ge=0)


class Pool(BaseModel):
    """The arms of the pool, in a fixed order (the action order of every policy)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    arms: tuple[Arm, ...] = Field(min_length=1)
    objective: Objective = Objective()

    @field_validator("arms")
    @classmethod
    def _unique_names(cls, arms: tuple[Arm, ...]) -> tuple[Arm, ...]:
        names = [arm.name for arm in arms]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"arm names must be unique; repeated: {', '.join(duplicates)}")
        return arms

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(arm.name for arm in self.arms)

    def arm(self, name: str) -> Arm:
        """The arm called ``name``; KeyError when the pool has none."""
        for arm in self.arms:
            if arm.name == name:
                return arm
        raise KeyError(name)

    def bind_self(self, self_url: str) -> Pool:
        """Replace the ``{self}`` placeholder in base URLs with the router's own address."""
        arms = tuple(
            arm.model_copy(update={"base_url": arm.base_url.replace(SELF_PLACEHOLDER, self_url)})
            for arm in self.arms
        )
        return self.model_copy(update={"arms": arms})


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
    """The pool of the replay models (RouterBench's 11), served by this router itself."""
    text = resources.files("router").joinpath("demo_pool.yaml").read_text(encoding="utf-8")
    return parse_pool(yaml.safe_load(text), source="demo_pool.yaml")
