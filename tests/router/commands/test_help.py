"""Every command's help shows defaults; ``serve --help`` lists every setting, generated from
``Settings``; renamed commands answer to their old names."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from router.cli import build_parser
from router.commands.help import settings_epilog, settings_reference
from router.settings import ReplaySettings, Settings


def parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """``parser`` and every sub-command parser under it (aliases once)."""
    yield parser
    seen: set[int] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                if id(child) not in seen:
                    seen.add(id(child))
                    yield from parsers(child)


def test_every_option_with_a_default_shows_it() -> None:
    checked = 0
    for parser in parsers(build_parser()):
        formatter = parser._get_formatter()
        for action in parser._actions:
            if (
                not action.option_strings
                or action.default in (None, argparse.SUPPRESS)
                or isinstance(action.default, bool)
            ):
                continue
            text = " ".join(formatter._format_action(action).split())
            assert "default" in text, (parser.prog, action.option_strings, text)
            checked += 1
    assert checked > 40  # the walk reached the sub-commands' options


def test_serve_help_lists_every_setting_with_its_default_and_description() -> None:
    serve = next(p for p in parsers(build_parser()) if p.prog == "signalroute serve")
    text = serve.format_help()
    expected = [f"SIGNALROUTE_{name}".upper() for name in Settings.model_fields if name != "replay"]
    expected += [f"SIGNALROUTE_REPLAY_{name}".upper() for name in ReplaySettings.model_fields]
    listed = [doc.variable for doc in settings_reference(Settings)]
    assert listed == expected
    for doc in settings_reference(Settings):
        assert doc.description, f"{doc.variable} needs a description in router/settings.py"
        assert f"  {doc.variable}  ({doc.kind}; default: {doc.default})" in text
    assert "  SIGNALROUTE_PORT  (int; default: 8000)\n      Port to listen on." in text
    assert "SIGNALROUTE_EXPLORATION  (epsilon | squarecb | softmax; default: squarecb)" in text
    assert "SIGNALROUTE_DATABASE_URL  (str; default: unset)" in text
    assert "SIGNALROUTE_REPLAY_MODEL_FAULTS  (JSON object; default: {})" in text


def test_the_reference_follows_the_settings_class() -> None:
    class Nested(BaseSettings):
        model_config = SettingsConfigDict(env_prefix="APP_INNER_")
        depth: int = Field(default=3, description="How deep.")

    class App(BaseSettings):
        model_config = SettingsConfigDict(env_prefix="APP_")
        mode: Literal["a", "b"] = Field(default="a", description="The mode.")
        folder: Path | None = Field(default=None, description="A folder " + "word " * 30)
        inner: Nested = Field(default_factory=Nested, description="Nested settings.")

    assert settings_epilog(App, width=40).splitlines() == [
        "settings (environment variables; an option above wins over its variable):",
        "  APP_MODE  (a | b; default: a)",
        "      The mode.",
        "  APP_FOLDER  (path; default: unset)",
        "      A folder word word word word word",
        "      word word word word word word word",
        "      word word word word word word word",
        "      word word word word word word word",
        "      word word word word",
        "  APP_INNER_DEPTH  (int; default: 3)",
        "      How deep.",
    ]


def test_renamed_commands_keep_their_old_names() -> None:
    parser = build_parser()
    evaluate = parser.parse_args(["evaluate", "--stage", "post"])
    replay = parser.parse_args(["replay", "--stage", "post"])
    assert evaluate.handler is replay.handler
    assert evaluate.stage == replay.stage == "post"
    demo = parser.parse_args(["demo-pool", "--port", "9001"])
    old = parser.parse_args(["replay-pool", "--port", "9001"])
    assert demo.handler is old.handler
    assert demo.port == old.port == 9001
    text = " ".join(parser.format_help().split())
    assert "evaluate (replay)" in text
    assert "demo-pool (replay-pool)" in text


def test_version_is_the_installed_distributions() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "router.cli", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.strip() == f"signalroute {metadata.version('signalroute')}"
