"""Help texts: every option's default shown, and the settings reference generated from
``Settings`` (so ``serve --help`` cannot drift from what the service reads)."""

from __future__ import annotations

import argparse
import copy
import textwrap
import types
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import SecretStr
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps descriptions and epilogs as written, and appends ``(default: ...)`` to every
    option that has a default its help does not already state. Unset (None) defaults and
    flags are left alone: their help says what happens without them."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if not _shows_default(action):
            return action.help
        text = action.help or ""
        return f"{text} (default: %(default)s)" if text else "(default: %(default)s)"

    def _format_action(self, action: argparse.Action) -> str:
        if action.help is None and _shows_default(action):
            action = copy.copy(action)  # argparse shows no help line for help=None
            action.help = "(default: %(default)s)"
        return super()._format_action(action)


def _shows_default(action: argparse.Action) -> bool:
    """Whether the help of ``action`` should be given its default: it has one worth showing
    that the help does not state already."""
    default = action.default
    text = (action.help or "").lower()
    return not (
        default is None
        or default is argparse.SUPPRESS
        or isinstance(default, bool)
        or "%(default)" in text
        or "default" in text
        or not (action.option_strings or action.nargs in (argparse.OPTIONAL, "*"))
    )


class Parser(argparse.ArgumentParser):
    """An argument parser whose help shows defaults; its sub-command parsers are of this
    class too (``add_subparsers`` creates parsers of the parent's class)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


@dataclass(frozen=True)
class SettingDoc:
    """One environment setting: its variable, its kind of value, its default and meaning."""

    variable: str
    kind: str
    default: str
    description: str


def settings_reference(settings: type[BaseSettings]) -> Iterator[SettingDoc]:
    """Every setting of ``settings`` in declaration order; a field that is itself a settings
    class (the replay pool's) contributes its own settings, under its own prefix."""
    prefix = str(settings.model_config.get("env_prefix", ""))
    for name, field in settings.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseSettings):
            yield from settings_reference(annotation)
            continue
        default: Any = field.default
        if default is PydanticUndefined and field.default_factory is not None:
            default = field.default_factory()  # type: ignore[call-arg]
        yield SettingDoc(
            variable=f"{prefix}{name}".upper(),
            kind=_kind(annotation),
            default=_default_text(default),
            description=field.description or "",
        )


def settings_epilog(settings: type[BaseSettings], *, width: int = 88) -> str:
    """The settings reference as help text: each variable with its kind and default, its
    description indented beneath."""
    lines = ["settings (environment variables; an option above wins over its variable):"]
    for doc in settings_reference(settings):
        lines.append(f"  {doc.variable}  ({doc.kind}; default: {doc.default})")
        lines += textwrap.wrap(
            doc.description, width=width, initial_indent="      ", subsequent_indent="      "
        )
    return "\n".join(lines)


def _kind(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is Literal:
        return " | ".join(str(a) for a in get_args(annotation))
    if origin in (Union, types.UnionType):
        kinds = [_kind(a) for a in get_args(annotation) if a is not type(None)]
        return " | ".join(kinds)
    if origin is dict:
        return "JSON object"
    if annotation is SecretStr:
        return "secret"
    if annotation is Path:
        return "path"
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return " | ".join(str(m.value) for m in annotation)
    return getattr(annotation, "__name__", str(annotation))


def _default_text(default: Any) -> str:
    if default is None:
        return "unset"
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, dict) and not default:
        return "{}"
    return str(default)
