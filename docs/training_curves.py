"""Draw docs/training_curves.png: validation PSNR against training time for every run in
checkpoints/, one panel per scale, with the papers' figures and bicubic as dashed lines.

    pip install -e ".[plot]" && python docs/training_curves.py

A run that starts from another run's weights (the recipe's `init`) is drawn from where that
run reached its best score, so the time axis is what the weights cost in all.
"""

from __future__ import annotations

import argparse
import csv
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt

from superres.models import get_model
from superres.train.recipe import Recipe, load_recipe

ROOT = Path(__file__).resolve().parent.parent
COLOURS = {"srcnn": "tab:green", "fsrcnn": "tab:blue", "espcn": "tab:orange"}


@dataclass
class Curve:
    """One run's validation scores: hours (from the start of its lineage) and PSNR."""

    name: str
    recipe: Recipe
    hours: list[float]
    psnr: list[float]


def _rows(run: Path) -> list[dict[str, str]]:
    with open(run / "log.csv", newline="") as f:
        return [r for r in csv.DictReader(f) if r["val_psnr"]]


def _parent(init: str | None, runs: Path) -> Path | None:
    """The run folder whose weights `init` names: `zoo:NAME` or `checkpoints/NAME/...`."""
    if not init:
        return None
    name = init[4:] if init.startswith("zoo:") else Path(init).parent.name
    folder = runs / name
    return folder if (folder / "log.csv").exists() else None


def _offset(run: Path, runs: Path) -> float:
    """Hours spent on the weights this run started from (0 for a run from scratch)."""
    parent = _parent(load_recipe(run / "recipe.yaml").init, runs)
    if parent is None:
        return 0.0
    best = max(_rows(parent), key=lambda r: float(r["val_psnr"]))
    return float(best["seconds"]) / 3600 + _offset(parent, runs)


def curves(runs: Path) -> list[Curve]:
    """Every run in `runs` that has validated at least once."""
    found = []
    for log in sorted(runs.glob("*/log.csv")):
        rows = _rows(log.parent)
        if not rows:
            continue
        start = _offset(log.parent, runs)
        found.append(Curve(log.parent.name, load_recipe(log.parent / "recipe.yaml"),
                           [start + float(r["seconds"]) / 3600 for r in rows],
                           [float(r["val_psnr"]) for r in rows]))
    return found


def draw(found: list[Curve], path: Path) -> None:
    scales = sorted({c.recipe.scale for c in found})
    fig, axes = plt.subplots(1, len(scales), figsize=(5 * len(scales), 4.2), squeeze=False)
    for ax, scale in zip(axes[0], scales, strict=True):
        here = [c for c in found if c.recipe.scale == scale]
        for curve in here:
            ax.plot(curve.hours, curve.psnr, color=COLOURS.get(curve.recipe.model, "black"),
                    label=curve.name, linestyle="-" if curve.recipe.init is None else "--")
        models = dict.fromkeys(c.recipe.model for c in here)
        for model in models:
            paper = get_model(model).reference.get("Set5", {}).get(scale)
            if paper:
                ax.axhline(paper[0], color=COLOURS.get(model, "black"), linestyle=":",
                           label=f"{model} paper {paper[0]:.2f}")
        bicubic = get_model("bicubic").reference["Set5"][scale][0]
        ax.axhline(bicubic, color="grey", linestyle=":", label=f"bicubic {bicubic:.2f}")
        ax.set_title(f"x{scale}: Set5 PSNR (dB, Y) during training")
        ax.set_xlabel("hours of training (wall clock, 2-core CPU)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=ROOT / "checkpoints")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "training_curves.png")
    args = parser.parse_args()
    found = curves(args.runs)
    draw(found, args.out)
    print(f"wrote {args.out} ({len(found)} runs)")


if __name__ == "__main__":
    main()
