"""The house's shape: firebreak's subpackages import only downwards, nothing imports in a circle, handlers only wire."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import ROOT

PACKAGE = ROOT / "layers/firebreak/firebreak"
LOCAL = ROOT / "firebreak_local"
# Rank of each capability: a module may import its own subpackage or one of a strictly lower rank.
LAYERS = {"core": 0, "triage": 1, "intel": 1, "feeds": 1, "blocking": 2, "containment": 2, "incident": 3}
MAX_MODULES_PER_FOLDER = 10
MAX_HANDLER_LINES = 50


def module_name(path: Path, root: Path, package: str) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join((package, *parts[:-1])) if parts[-1] == "__init__" else ".".join((package, *parts))


def imports_of(path: Path, within: str) -> Iterator[str]:
    """Every module of `within` that `path` imports, at module level or inside a function."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name.split(".")[0] == within)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == within:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def graph(root: Path, package: str) -> dict[str, set[str]]:
    modules = {module_name(path, root, package): path for path in root.rglob("*.py")}
    return {
        name: {imported for imported in imports_of(path, package) if imported in modules and imported != name}
        for name, path in modules.items()
    }


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in edges[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in edges:
        if node not in index:
            visit(node)
    return found


def capability(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in LAYERS) else None


def test_every_domain_module_lives_in_a_capability_subpackage() -> None:
    loose = sorted(path.name for path in PACKAGE.glob("*.py") if path.name != "__init__.py")
    assert loose == []
    assert set(LAYERS) == {path.name for path in PACKAGE.iterdir() if (path / "__init__.py").exists()}


@pytest.mark.parametrize("subpackage", sorted(LAYERS))
def test_each_subpackage_says_what_lives_there_and_what_it_may_import(subpackage: str) -> None:
    docstring = ast.get_docstring(ast.parse((PACKAGE / subpackage / "__init__.py").read_text()))
    assert docstring and "import" in docstring.lower()
    assert len(list((PACKAGE / subpackage).glob("*.py"))) - 1 <= MAX_MODULES_PER_FOLDER


def test_domain_imports_point_only_down() -> None:
    upward = [
        f"{module} -> {imported}"
        for module, imported_set in graph(PACKAGE, "firebreak").items()
        for imported in imported_set
        if (own := capability(module)) and (other := capability(imported)) and own != other
        if LAYERS[other] >= LAYERS[own]
    ]
    assert upward == []


@pytest.mark.parametrize(("root", "package"), [(PACKAGE, "firebreak"), (LOCAL, "firebreak_local")])
def test_no_import_circle(root: Path, package: str) -> None:
    assert cycles(graph(root, package)) == []


def test_the_check_sees_a_circle_and_an_upward_import() -> None:
    assert cycles({"a": {"b"}, "b": {"a"}, "c": set()}) == [["a", "b"]]
    assert capability("firebreak.core.models") == "core"
    assert LAYERS[capability("firebreak.incident.records") or ""] > LAYERS["blocking"]


@pytest.mark.parametrize("handler", sorted(ROOT.glob("functions/*/app.py")), ids=lambda path: path.parent.name)
def test_handlers_only_wire(handler: Path) -> None:
    assert len(handler.read_text().splitlines()) <= MAX_HANDLER_LINES
