"""The layers hold: no module imports one above it (docs/ARCHITECTURE.md).

foundation -> data_sources -> forecaster.core -> forecaster.market | forecaster.synthesis
-> forecaster.cli | dashboard. Every import counts, at the top of a file or deferred
inside a function.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# layer -> the layers it may import (besides itself)
ALLOWED = {
    "foundation": set(),
    "data_sources": {"foundation"},
    "forecaster.core": {"foundation"},
    "forecaster.market": {"foundation", "data_sources", "forecaster.core"},
    "forecaster.synthesis": {"foundation", "data_sources", "forecaster.core"},
    "forecaster.cli": {"foundation", "data_sources", "forecaster.core", "forecaster.market", "forecaster.synthesis",
                       "forecaster", "dashboard"},
    "dashboard": {"foundation", "data_sources", "forecaster.core", "forecaster.market", "forecaster.synthesis"},
    "forecaster": {"foundation", "forecaster.core", "forecaster.market", "forecaster.cli"},  # the package root, __main__
}


def layer_of(module: str) -> str | None:
    for layer in sorted(ALLOWED, key=len, reverse=True):
        if module == layer or module.startswith(layer + "."):
            return layer
    return None


def modules():
    for root in ("foundation", "data_sources", "forecaster", "dashboard"):
        for path in sorted((REPO / root).rglob("*.py")):
            name = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
            yield name, path


def imported(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}  # `from forecaster import market`
    return {m for m in found if layer_of(m) is not None}


@pytest.mark.parametrize("name, path", list(modules()), ids=lambda v: v if isinstance(v, str) else "")
def test_no_module_imports_a_higher_layer(name, path):
    own = layer_of(name)
    assert own is not None, f"{name} belongs to no layer of ALLOWED"
    upward = sorted(m for m in imported(path)
                    if layer_of(m) != own and layer_of(m) not in ALLOWED[own]
                    and not (own == "forecaster" and m == "forecaster"))
    assert not upward, f"{name} ({own}) imports {upward}"


def test_the_layer_map_is_not_empty():
    """A guard that the walk finds the tree (a test over no modules passes vacuously)."""
    names = [n for n, _ in modules()]
    assert len(names) > 80 and "forecaster.core.sampler" in names and "forecaster.market.pipeline" in names
