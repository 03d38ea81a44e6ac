"""House rules that a reader would otherwise have to police by hand.

- Every top-level package is in an import-linter layer (``pyproject.toml``): a new package joins a
  layer before CI passes (import-linter's own ``exhaustive`` option needs container packages).
- No function over 60 lines or of cyclomatic complexity over 15 (McCabe, as flake8 counts it),
  except those listed in ``ALLOWED`` with the reason.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import mccabe
import pytest

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 60
MAX_COMPLEXITY = 15
#: "path:function" → why it is longer or more branched than the rule.
ALLOWED: dict[str, str] = {}


def _packages() -> list[str]:
    return sorted(p.parent.name for p in ROOT.glob("*/__init__.py") if p.parent.name != "tests")


def test_every_top_level_package_is_in_a_layer() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    layers = next(c for c in config["contracts"] if c["type"] == "layers")["layers"]
    in_layers = {name.strip() for layer in layers for name in layer.split("|")}
    assert set(_packages()) <= in_layers, f"not in a layer: {sorted(set(_packages()) - in_layers)}"
    assert set(_packages()) <= set(config["root_packages"])


def _offences(path: Path) -> list[str]:
    source = path.read_text()
    tree = ast.parse(source)
    relative = path.relative_to(ROOT)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            lines = node.end_lineno - node.lineno + 1  # type: ignore[operator]
            if lines > MAX_LINES and f"{relative}:{node.name}" not in ALLOWED:
                found.append(f"{relative}:{node.lineno} {node.name}: {lines} lines")
    visitor = mccabe.PathGraphingAstVisitor()
    visitor.preorder(tree, visitor)
    for graph in visitor.graphs.values():
        name = graph.entity.split(".")[-1]
        if graph.complexity() > MAX_COMPLEXITY and f"{relative}:{name}" not in ALLOWED:
            found.append(f"{relative}:{graph.lineno} {graph.entity}: complexity {graph.complexity()}")
    return found


def test_functions_are_short_and_simple() -> None:
    offences = [o for package in _packages() for path in sorted((ROOT / package).rglob("*.py")) for o in _offences(path)]
    assert not offences, "\n".join(offences)
