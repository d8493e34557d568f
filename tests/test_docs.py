"""The documentation site builds with ``mkdocs build --strict``: a broken link or anchor, a
page missing from the navigation's files, or a snippet whose file is gone fails the build."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README_LIMIT = 250


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},  # the theme's notice, not ours
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    assert (tmp_path / "index.html").is_file()
    assert (tmp_path / "reference" / "settings" / "index.html").is_file()


def test_the_readme_is_short_and_gives_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= README_LIMIT
    assert "make serve" in readme
    assert "make test" in readme


def test_the_architecture_page_names_every_package_folder() -> None:
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    folders = [
        path.parent
        for top in ("features", "store", "learner", "router")
        for path in (ROOT / top).rglob("__init__.py")
    ]
    tools = [path for path in (ROOT / "router" / "tools").glob("*.py") if path.stem != "__init__"]
    missing = [
        str(path.relative_to(ROOT))
        for path in [*folders, *tools]
        if f"`{path.name}{'/' if path.is_dir() else ''}`" not in page
        and f"{path.name}/" not in page
    ]
    assert not missing, f"docs/architecture.md does not name: {', '.join(missing)}"
