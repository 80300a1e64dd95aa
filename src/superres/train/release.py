"""Shipping a training run into the zoo: copy its best weights, measure them with the
evaluation protocol, and record the file, its sha256, the scores and the training cost."""

from __future__ import annotations

import csv
from pathlib import Path

from superres.evaluation import evaluate
from superres.files import file_digest
from superres.inference.upscaler import load
from superres.train.recipe import load_recipe
from superres.train.trainer import init_path
from superres.weights import ShippedWeights, add_shipped


def add_to_zoo(
    run: Path, recipe_name: str, datasets: tuple[str, ...] = ("Set5", "Set14", "BSD100"),
    degradation: str = "bicubic",
) -> ShippedWeights:
    """Ship the best weights of a training run folder: copy them into the zoo, measure them
    with the evaluation protocol (on LR made by `degradation`: a model for real photos is
    measured on the realistic benchmark), and record file, sha256, scores and training cost
    in index.json (replacing an older entry for the same model and scale)."""
    recipe = load_recipe(run / "recipe.yaml")
    weights_file = run / "best.safetensors"
    with open(run / "log.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["val_psnr"]]
    best = max(rows, key=lambda r: float(r["val_psnr"]))
    upscaler = load(recipe.model, recipe.scale, weights=weights_file)
    scores = {r.dataset: [round(r.psnr, 4), round(r.ssim, 5)]
              for r in evaluate(upscaler, datasets, progress=False, degradation=degradation)}
    entry = ShippedWeights(
        model=recipe.model, scale=recipe.scale, file=f"{recipe.model}_x{recipe.scale}.safetensors",
        sha256="", recipe=recipe_name, steps=int(best["step"]),
        train_hours=round(float(best["seconds"]) / 3600, 2), scores=scores,
        init=_describe_init(recipe.init), degradation=degradation,
    )
    return add_shipped(entry, weights_file)


def _describe_init(init: str | None) -> str:
    """The recipe's `init` with the sha256 of the file it named at shipping time, so the
    record stays true after the starting weights are replaced."""
    if not init:
        return ""
    return f"{init} (sha256 {file_digest(init_path(init))})"
