"""Shipped weights: safetensors files beside this module, listed in `index.json` with their
sha256 (checked before loading) and the scores measured with `superres eval`."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from superres.files import file_digest

ZOO = Path(__file__).resolve().parent


class WeightsNotFoundError(FileNotFoundError):
    """A learned model was asked for without weights to load."""


@dataclass(frozen=True)
class ShippedWeights:
    """One shipped weights file and what it measured."""

    model: str
    scale: int
    file: str
    sha256: str
    recipe: str
    steps: int  # optimiser steps of the shipped (best-validation) weights
    train_hours: float  # wall-clock training time to those steps, on one CPU thread
    # dataset -> [PSNR, SSIM], measured with `superres eval` (Y channel, shave = scale)
    scores: dict[str, list[float]] = field(default_factory=dict)
    # the weights the run started from (the recipe's `init` and their sha256); train_hours
    # counts this run only, so a fine-tune's full cost adds its starting point's
    init: str = ""

    @property
    def path(self) -> Path:
        return ZOO / self.file


@cache
def shipped_weights() -> tuple[ShippedWeights, ...]:
    """Every entry of the zoo's index."""
    index = ZOO / "index.json"
    if not index.exists():
        return ()
    return tuple(ShippedWeights(**entry) for entry in json.loads(index.read_text()))


def find_weights(model: str, scale: int) -> ShippedWeights | None:
    """The shipped weights of `model` at `scale`, if any."""
    return next((w for w in shipped_weights() if w.model == model and w.scale == scale), None)


def checked_path(weights: ShippedWeights) -> Path:
    """The weights file, after checking that it is there and has the recorded sha256."""
    if not weights.path.exists():
        raise WeightsNotFoundError(f"{weights.path.name} is missing from the installation")
    actual = file_digest(weights.path)
    if actual != weights.sha256:
        raise ValueError(
            f"{weights.path.name} is corrupt: sha256 {actual}, expected {weights.sha256}"
        )
    return weights.path


def add_to_zoo(
    run: Path, recipe_name: str, datasets: tuple[str, ...] = ("Set5", "Set14", "BSD100")
) -> ShippedWeights:
    """Ship the best weights of a training run folder: copy them into the zoo, measure them
    with the evaluation protocol, and record file, sha256, scores and training cost in
    index.json (replacing an older entry for the same model and scale)."""
    import csv
    import shutil

    from superres.evaluation import evaluate
    from superres.train.recipe import load_recipe
    from superres.upscaler import load

    recipe = load_recipe(run / "recipe.yaml")
    weights_file = run / "best.safetensors"
    with open(run / "log.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["val_psnr"]]
    best = max(rows, key=lambda r: float(r["val_psnr"]))
    upscaler = load(recipe.model, recipe.scale, weights=weights_file)
    scores = {r.dataset: [round(r.psnr, 4), round(r.ssim, 5)]
              for r in evaluate(upscaler, datasets, progress=False)}
    target = ZOO / f"{recipe.model}_x{recipe.scale}.safetensors"
    shutil.copyfile(weights_file, target)
    entry = ShippedWeights(
        model=recipe.model, scale=recipe.scale, file=target.name, sha256=file_digest(target),
        recipe=recipe_name, steps=int(best["step"]),
        train_hours=round(float(best["seconds"]) / 3600, 2), scores=scores,
        init=_describe_init(recipe.init),
    )
    entries = [w for w in shipped_weights() if (w.model, w.scale) != (entry.model, entry.scale)]
    entries = sorted([*entries, entry], key=lambda w: (w.model, w.scale))
    index = json.dumps([dataclasses.asdict(w) for w in entries], indent=1)
    (ZOO / "index.json").write_text(index + "\n")
    shipped_weights.cache_clear()
    return entry


def _describe_init(init: str | None) -> str:
    """The recipe's `init` with the sha256 of the file it named at shipping time, so the
    record stays true after the starting weights are replaced."""
    if not init:
        return ""
    from superres.train.trainer import init_path

    return f"{init} (sha256 {file_digest(init_path(init))})"
