"""The package keeps the shape DESIGN.md gives it: no import cycle inside ``gateway/`` and no
module over 500 lines.

Imports are read from the source (``ast``), not by importing: an import under
``if TYPE_CHECKING:`` or inside a function is a dependency all the same.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "gateway"
MAX_LINES = 500


def modules(package: Path = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> file, for every module of ``package`` (packages by __init__)."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imported(module: str, path: Path) -> Iterator[str]:
    """Every dotted name ``module`` imports, relative imports made absolute."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".")
                if not is_package:
                    parts = parts[:-1]
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*parts, base] if base else parts)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def import_graph(found: Mapping[str, Path]) -> dict[str, set[str]]:
    """Module -> the modules of the package it imports.

    ``from gateway.x import name`` counts as importing ``gateway.x.name`` when that is a
    module, else ``gateway.x``. A module naming its own package is left out: the package's
    ``__init__`` re-exports its modules, which is its layout, not a dependency.
    """

    def owner(name: str) -> str | None:
        while name not in found:
            if "." not in name:
                return None
            name = name.rsplit(".", 1)[0]
        return name

    graph: dict[str, set[str]] = {m: set() for m in found}
    for module, path in found.items():
        for name in imported(module, path):
            target = owner(name)
            if target and target != module and target != module.rsplit(".", 1)[0]:
                graph[module].add(target)
    return graph


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


# ---- the checker itself can fail ---------------------------------------------------------


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, "utf-8")
    return root / "gateway"


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        pytest.param(
            {"gateway/__init__.py": "", "gateway/a.py": "from gateway import b\n",
             "gateway/b.py": "import gateway.a\n"},
            [["gateway.a", "gateway.b"]], id="plain imports"),
        pytest.param(
            {"gateway/__init__.py": "", "gateway/e/__init__.py": "",
             "gateway/e/core.py": "from gateway.e.fetch import Fetch\n",
             "gateway/e/fetch.py": ("from typing import TYPE_CHECKING\n"
                                    "if TYPE_CHECKING:\n    from .core import View\n")},
            [["gateway.e.core", "gateway.e.fetch"]], id="under TYPE_CHECKING, relative"),
        pytest.param(
            {"gateway/__init__.py": "", "gateway/a.py": "def f():\n    from gateway import b\n",
             "gateway/b.py": "from gateway.a import f\n"},
            [["gateway.a", "gateway.b"]], id="inside a function"),
        pytest.param(
            {"gateway/__init__.py": "", "gateway/e/__init__.py": "from gateway.e.x import X\n",
             "gateway/e/x.py": "from gateway.e import y\n", "gateway/e/y.py": ""},
            [], id="a package re-exporting its module"),
        pytest.param(
            {"gateway/__init__.py": "", "gateway/a.py": "from gateway import b\n",
             "gateway/b.py": "import os\n"},
            [], id="one way"),
    ],
)
def test_the_cycle_check_sees_every_kind_of_import(
    tmp_path: Path, files: dict[str, str], expected: list[list[str]]
) -> None:
    package = write(tmp_path, files)
    assert cycles(import_graph(modules(package))) == expected


# ---- the package -------------------------------------------------------------------------


def test_no_import_cycle_inside_the_package() -> None:
    found = cycles(import_graph(modules()))
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_no_module_over_500_lines() -> None:
    sizes = {m: len(p.read_text("utf-8").splitlines()) for m, p in modules().items()}
    assert len(sizes) > 20  # the package was found
    over = {m: n for m, n in sizes.items() if n > MAX_LINES}
    assert not over, f"modules over {MAX_LINES} lines: {over}"
