"""The package's structure, checked: no import cycle (imports inside functions count), every
module inside a layer of the import-linter contract, and one version string."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import sys
from pathlib import Path

import grimp
import pytest

import superres
from superres.cli import main

if sys.version_info >= (3, 11):
    import tomllib
else:  # import-linter brings tomli on older Pythons
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("superres", include_external_packages=False, cache_dir=None)


def strongly_connected(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one module (import cycles)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(edges)))

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in edges[module]:
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = []
            while not component or component[-1] != module:
                component.append(stack.pop())
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(edges):
        if module not in index:
            visit(module)
    return cycles


def test_the_cycle_finder_finds_a_cycle():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert strongly_connected(edges) == [["a", "b", "c"]]
    assert strongly_connected({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_itself_back_even_from_inside_a_function(graph):
    edges = {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    assert strongly_connected(edges) == []


def test_every_module_belongs_to_a_layer_of_the_contract(graph):
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    layers = next(c["layers"] for c in config["contracts"] if c["type"] == "layers")
    named = [name.strip() for layer in layers for name in layer.split("|")]
    outside = sorted(
        module for module in graph.modules
        if module != "superres"
        and not any(module == name or module.startswith(name + ".") for name in named)
    )
    assert outside == []


def test_the_version_is_written_once(capsys):
    assert importlib.metadata.version("superres") == superres.__version__
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.split() == ["superres", superres.__version__]


def test_the_documented_diagram_is_the_current_import_graph():
    spec = importlib.util.spec_from_file_location(
        "architecture_graph", ROOT / "docs" / "architecture_graph.py")
    drawing = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(drawing)
    stack, edges = drawing.current_diagram()
    assert drawing.mermaid(stack, edges) in (ROOT / "docs" / "architecture.md").read_text(), (
        "docs/architecture.md is out of date: run python docs/architecture_graph.py")
    assert all(  # every arrow points down the layers
        next(i for i, layer in enumerate(stack) if a in layer)
        < next(i for i, layer in enumerate(stack) if b in layer) for a, b in edges)
