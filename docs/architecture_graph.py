"""Draw the package's import graph between its folders, from the code itself (grimp, the
library import-linter uses), into docs/architecture.md's diagram and docs/architecture.png.

    pip install -e ".[test,plot]" && python docs/architecture_graph.py

Each box is a layer's folder or module; an arrow A -> B says some module in A imports one in
B (imports inside functions count). Layers come from pyproject.toml's contract, top to bottom,
so every arrow should point down; tests/test_architecture.py checks the committed diagram is
the one the code draws now.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import grimp

if sys.version_info >= (3, 11):
    import tomllib
else:  # import-linter brings tomli on older Pythons
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "architecture.md"
PNG = ROOT / "docs" / "architecture.png"
BEGIN, END = "```mermaid", "```"


def layers() -> list[list[str]]:
    """The layers contract of pyproject.toml, top first: each layer a list of packages."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    contract = next(c for c in config["contracts"] if c["type"] == "layers")
    return [[name.strip() for name in layer.split("|")] for layer in contract["layers"]]


def folder_edges(graph: grimp.ImportGraph, names: list[str]) -> set[tuple[str, str]]:
    """(A, B) for every pair of distinct layer packages where a module of A imports B."""
    def owner(module: str) -> str | None:
        return next((n for n in names if module == n or module.startswith(n + ".")), None)

    edges = set()
    for module in graph.modules:
        source = owner(module)
        for imported in graph.find_modules_directly_imported_by(module):
            target = owner(imported)
            if source and target and source != target:
                edges.add((source, target))
    return edges


def short(name: str) -> str:
    return name.removeprefix("superres.")


def mermaid(stack: list[list[str]], edges: set[tuple[str, str]]) -> str:
    """A top-down Mermaid flowchart: one row per layer, then the imports."""
    lines = [BEGIN, "flowchart TD"]
    for depth, layer in enumerate(stack):
        nodes = "\n    ".join(f'{short(n).replace(".", "_")}["{short(n)}"]' for n in layer)
        lines.append(f"  subgraph L{depth}[\" \"]\n    direction LR\n    {nodes}\n  end")
    for source, target in sorted(edges):
        lines.append(f"  {short(source).replace('.', '_')} --> {short(target).replace('.', '_')}")
    lines.append(END)
    return "\n".join(lines)


def draw_png(stack: list[list[str]], edges: set[tuple[str, str]], path: Path) -> None:
    """The same graph as a picture: layers as rows, arrows from importer to imported."""
    import matplotlib.pyplot as plt

    position = {}
    for depth, layer in enumerate(stack):
        for i, name in enumerate(layer):
            position[name] = ((i + 1) / (len(layer) + 1), 1 - depth / (len(stack) - 1))
    fig, ax = plt.subplots(figsize=(8, 9))
    for source, target in sorted(edges):
        (x0, y0), (x1, y1) = position[source], position[target]
        ax.annotate("", xy=(x1, y1 + 0.025), xytext=(x0, y0 - 0.025),
                    arrowprops={"arrowstyle": "->", "color": "0.55", "lw": 0.8,
                                "connectionstyle": "arc3,rad=0.12"})
    for name, (x, y) in position.items():
        ax.text(x, y, short(name), ha="center", va="center", fontsize=11,
                bbox={"boxstyle": "round,pad=0.4", "fc": "#e8f0fb", "ec": "#3b6db3"})
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.06, 1.06)
    ax.axis("off")
    ax.set_title("superres: layers (top imports bottom) and their imports", fontsize=12)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def current_diagram() -> tuple[list[list[str]], set[tuple[str, str]]]:
    stack = layers()
    graph = grimp.build_graph("superres", include_external_packages=False, cache_dir=None)
    return stack, folder_edges(graph, [name for layer in stack for name in layer])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-png", action="store_true", help="update the Markdown only")
    args = parser.parse_args()
    stack, edges = current_diagram()
    text = DOC.read_text()
    block = re.compile(re.escape(BEGIN) + r"\n(?:.*?\n)?" + re.escape(END), re.S)
    DOC.write_text(block.sub(lambda _: mermaid(stack, edges), text, count=1))
    if not args.no_png:
        draw_png(stack, edges, PNG)
    print(f"{len(edges)} imports between {sum(map(len, stack))} layer packages -> {DOC.name}")


if __name__ == "__main__":
    main()
