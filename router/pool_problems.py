"""What is wrong with a pool file, as a list of problems an operator can fix in one pass.

Validation collects every field problem of a document (pydantic does) and the
cross-references between its parts (escalation targets and profile arms that name no arm),
and words each so that it says what to do: a literal ``api_key`` points to ``api_key_env``,
an unknown field suggests the field it was probably meant to be.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

Severity = Literal["error", "warning"]

SECRET_FIELDS = frozenset({"api_key", "apikey", "api-key", "key", "token", "secret"})
"""Field names under which people paste a key into a pool file."""

API_KEY_HINT = (
    "a pool file holds no keys: put the key in an environment variable and name the variable "
    "with api_key_env (e.g. api_key_env: OPENAI_API_KEY)"
)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a pool: where (a dotted path into the file) and what.

    An ``error`` keeps the pool from loading; a ``warning`` lets it load but something will
    likely fail at run time (an unset key variable).
    """

    where: str
    message: str
    severity: Severity = "error"

    def line(self) -> str:
        return f"{self.where}: {self.message}"


def describe_problems(source: str, problems: Sequence[Problem]) -> str:
    """One message for every problem: a single line for one, a list under a header for more."""
    if len(problems) == 1:
        return f"{source}: {problems[0].line()}"
    lines = "".join(f"\n  - {p.line()}" for p in problems)
    return f"{source}: {len(problems)} problems:{lines}"


def reference_problems(
    arm_names: Sequence[str],
    escalation_targets: Sequence[str],
    profile_arms: Mapping[str, Sequence[str]],
) -> list[Problem]:
    """Escalation targets and profile arms that name arms the pool does not have, and
    profiles that list an arm twice."""
    known = set(arm_names)
    problems: list[Problem] = []
    unknown = [t for t in escalation_targets if t not in known]
    if unknown:
        problems.append(
            Problem(
                "escalation_targets",
                f"escalation_targets name unknown arms: {', '.join(unknown)}",
            )
        )
    for name, arms in profile_arms.items():
        missing = [arm for arm in arms if arm not in known]
        if missing:
            problems.append(
                Problem(
                    f"profiles.{name}.arms",
                    f"profile {name!r} names arms the pool does not have: {', '.join(missing)}",
                )
            )
        if len(set(arms)) != len(arms):
            problems.append(
                Problem(f"profiles.{name}.arms", f"profile {name!r} lists an arm twice")
            )
    return problems


def validation_problems(
    error: ValidationError, document: Any, *, allowed: Mapping[str, Sequence[str]]
) -> tuple[Problem, ...]:
    """Every problem of a document that failed validation.

    ``allowed`` maps each part of a pool file (``""`` for the top level, ``arm``,
    ``objective``, ``stages``, ``profile``) to its field names, for "did you mean" hints.
    The model-level cross-reference check runs only once every field is valid, so its
    error is replaced here by the same check on the raw document, which runs always.
    """
    problems: list[Problem] = []
    for entry in error.errors():
        loc = tuple(entry["loc"])
        if not loc and entry["type"] == "value_error":
            continue  # the cross-references: checked on the raw document below
        if entry["type"] == "too_short" and _long_enough(document, loc, entry.get("ctx")):
            continue  # a side effect of invalid items, which are reported themselves
        where = ".".join(str(part) for part in loc) or "(top level)"
        message = str(entry["msg"]).removeprefix("Value error, ")
        if entry["type"] == "extra_forbidden" and loc:
            message += _unknown_field_hint(str(loc[-1]), allowed.get(_part(loc[:-1]), ()))
        problems.append(Problem(where, message))
    problems += _raw_reference_problems(document)
    return tuple(problems) or (Problem("(top level)", str(error)),)


def _long_enough(document: Any, loc: tuple[Any, ...], ctx: Mapping[str, Any] | None) -> bool:
    """Whether the raw value at ``loc`` has enough items: pydantic counts only the valid
    ones, so a list whose items all failed is also said to be too short."""
    value = document
    for part in loc:
        in_mapping = isinstance(value, Mapping) and part in value
        in_list = isinstance(value, list) and isinstance(part, int) and part < len(value)
        if not (in_mapping or in_list):
            return False
        value = value[part]
    minimum = int((ctx or {}).get("min_length", 1))
    return isinstance(value, list) and len(value) >= minimum


def _unknown_field_hint(name: str, fields: Sequence[str]) -> str:
    if name.lower() in SECRET_FIELDS:
        return f": {API_KEY_HINT}"
    close = difflib.get_close_matches(name, fields, n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else f" (known fields: {', '.join(fields)})"


def _part(parent: tuple[Any, ...]) -> str:
    """Which part of a pool file the path ``parent`` leads to."""
    if not parent:
        return ""
    if parent[-1] == "judge" or (len(parent) >= 2 and parent[-2] == "arms"):
        return "arm"
    if parent[-1] in ("objective", "stages"):
        return str(parent[-1])
    if len(parent) >= 2 and parent[-2] == "profiles":
        return "profile"
    return "?"


def _strings(value: Any) -> list[str] | None:
    if not isinstance(value, list):
        return None
    return [item for item in value if isinstance(item, str)]


def _raw_reference_problems(document: Any) -> list[Problem]:
    """``reference_problems`` on a document that may be invalid elsewhere: arms without a
    name and entries of the wrong type are left to field validation."""
    if not isinstance(document, Mapping) or not isinstance(document.get("arms"), list):
        return []
    names = [
        arm["name"]
        for arm in document["arms"]
        if isinstance(arm, Mapping) and isinstance(arm.get("name"), str)
    ]
    targets = _strings(document.get("escalation_targets")) or []
    profiles = document.get("profiles")
    profile_arms: dict[str, list[str]] = {}
    if isinstance(profiles, Mapping):
        for name, profile in profiles.items():
            arms = _strings(profile.get("arms")) if isinstance(profile, Mapping) else None
            if arms:
                profile_arms[str(name)] = arms
    return reference_problems(names, targets, profile_arms)
