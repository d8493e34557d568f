"""The package layout the architecture promises, checked on the source.

Dependencies point one way (``features`` <- ``store`` <- ``learner`` <- ``router``), the
service does not depend on the tools beside it (``router/tools``) except to mount the replay
pool, nothing outside ``router`` imports FastAPI, and no two modules import each other
(directly or round a longer loop), type-only imports included.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("features", "store", "learner", "router")

ALLOWED = {
    "features": {"features"},
    "store": {"store", "features"},  # shared value types only
    "learner": {"learner", "features"},
    "router": {"features", "store", "learner", "router"},
}

SERVICE_USES_OF_TOOLS = {
    # The service mounts the replay pool when no pool file is given (the demo pool).
    ("router.app", "router.tools.replay_pool"),
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {
        _module_name(path): path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def _imports(path: Path, module: str) -> Iterator[str]:
    """Every module name ``path`` imports, at any depth (functions, ``TYPE_CHECKING``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        graph[module] = {name for name in _imports(path, module) if name in modules} - {module}
    return graph


def _top(module: str) -> str:
    return module.split(".")[0]


def test_packages_depend_one_way() -> None:
    wrong = [
        f"{module} imports {target}"
        for module, targets in _graph().items()
        for target in targets
        if _top(target) not in ALLOWED[_top(module)]
    ]
    assert wrong == []


def test_only_the_router_imports_fastapi() -> None:
    wrong = [
        module
        for module, path in _modules().items()
        if _top(module) != "router"
        and any(name.split(".")[0] in ("fastapi", "starlette") for name in _imports(path, module))
    ]
    assert wrong == []


def _is_tool(module: str) -> bool:
    return module.startswith("router.tools.") or module == "router.tools"


def test_the_service_does_not_depend_on_its_tools() -> None:
    wrong = [
        f"{module} imports {target}"
        for module, targets in _graph().items()
        if _top(module) == "router" and not _is_tool(module) and module != "router.cli"
        for target in targets
        if _is_tool(target)
        and not any(
            module == user and target.startswith(tool) for user, tool in SERVICE_USES_OF_TOOLS
        )
    ]
    assert wrong == []


def _cycle_from(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (a path that returns to its start), if there is one."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)) is not None:
            return found
    return None


def _without_packages(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Edges to a package's ``__init__`` are dropped when they come from inside the package:
    importing ``a.b.c`` runs ``a/b/__init__.py`` first, which is not a cycle of ours."""
    return {
        module: {t for t in targets if not module.startswith(t + ".")}
        for module, targets in graph.items()
    }


def test_no_import_cycles() -> None:
    assert _cycle_from(_without_packages(_graph())) is None


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set[str]()}
    assert _cycle_from(graph) == ["a", "b", "c", "a"]
    assert _cycle_from({"a": {"b"}, "b": set[str]()}) is None


@pytest.mark.parametrize("package", PACKAGES)
def test_every_package_is_found(package: str) -> None:
    assert any(_top(module) == package for module in _modules())
