"""The public API: what `import superres` offers, and what the command line calls.

Each function is a thin entry over the layer that does the work (inference, evaluation,
training), so users and the CLI share one path and one set of messages.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import wraps
from pathlib import Path
from typing import Any, ParamSpec

import numpy as np
import torch
from torch import nn

from superres.data.depth import read_depth, read_guide
from superres.depth import DepthResult
from superres.depth import evaluate_depth as _evaluate_depth
from superres.depth import upscale_depth as _upscale_depth
from superres.evaluation import DatasetResult
from superres.evaluation import evaluate as _evaluate
from superres.image.io import Picture
from superres.inference import upscaler as _upscaler
from superres.inference.upscaler import ImageLike, NoShippedWeights, Upscaler
from superres.models import MODELS, ModelSpec, default_model, get_model
from superres.train.depth import DepthRunResult, train_depth
from superres.train.recipe import Recipe, load_recipe, shipped_recipes
from superres.train.trainer import RunResult
from superres.train.trainer import train as _train
from superres.train.unpaired_gan import train_unpaired
from superres.weights import shipped_weights

P = ParamSpec("P")


def _naming_a_recipe(load: Callable[P, Upscaler]) -> Callable[P, Upscaler]:
    """`load`, whose missing-weights error names the shipped recipe that trains them."""

    @wraps(load)
    def named(*args: P.args, **kwargs: P.kwargs) -> Upscaler:
        try:
            return load(*args, **kwargs)
        except NoShippedWeights as err:
            recipes = [name for name, path in shipped_recipes().items()
                       if (load_recipe(path).model, load_recipe(path).scale)
                       == (err.model, err.scale)]
            if not recipes:
                raise
            raise NoShippedWeights(err.model, err.scale,
                                   f"train it (`superres train {recipes[0]}`)") from None

    return named


load = _naming_a_recipe(_upscaler.load)


def build(name: str, scale: int) -> nn.Module:
    """The bare `nn.Module` of a registered model for `scale` (untrained for learned models)."""
    spec = get_model(name)
    spec.check_scale(scale)
    return spec.build(scale)


def list_models() -> list[ModelSpec]:
    """Every registered model, in registry order."""
    return list(MODELS.values())


def model_table() -> list[dict[str, Any]]:
    """One row per registered model, as `superres models --json` prints it."""
    return [model_row(spec) for spec in MODELS.values()]


def model_row(spec: ModelSpec) -> dict[str, Any]:
    """What `superres models` says of one model, registered or composed: name, scales,
    trainable parameters per scale, shipped weights, the survey's axes and the paper's
    reference numbers."""
    return {
        "name": spec.name,
        "summary": spec.summary,
        "framework": spec.framework,
        "supervision": spec.supervision,
        "color": spec.color,
        "learned": spec.learned,
        "frames": spec.frames,  # 1, or a video model's window of 2r + 1 frames
        "scales": list(spec.scales),
        "params": {str(s): spec.params(s) for s in spec.scales},
        "weights": [f"x{w.scale}" for w in shipped_weights() if w.model == spec.name],
        "paper": spec.paper,
        "reference": {
            dataset: {str(s): list(v) for s, v in by_scale.items()}
            for dataset, by_scale in spec.reference.items()
        },
    }


def evaluate(
    model: str | Upscaler, scale: int, datasets: Sequence[str], device: str | torch.device = "cpu"
) -> list[DatasetResult]:
    """PSNR/SSIM of a model on test sets, with the standard protocol (Y channel, shave = scale)."""
    upscaler = load(model, scale, device) if isinstance(model, str) else model
    return _evaluate(upscaler, datasets)


def evaluate_depth(method: str, scale: int, datasets: Sequence[str],
                   weights: str | Path | None = None) -> list[DepthResult]:
    """RMSE (0-255) of a depth method (bicubic, jbu, guided-filter, or a guided model such
    as djf) on depth sets; a learned model on a registered set scores each scene with the
    leave-one-out fold that never saw it (`superres.depth`)."""
    return [_evaluate_depth(method, scale, dataset, weights) for dataset in datasets]


def upscale_depth(depth: str | Path, guide: str | Path, scale: int, method: str = "learned-jbu",
                  weights: str | Path | None = None) -> Picture:
    """Upsample the LR depth map in file `depth` by `scale`, guided by the RGB image in file
    `guide` (scale times its size), to a depth map of the input's bit depth."""
    lr, bit_depth = read_depth(depth)
    rgb = read_guide(guide)
    expected = (lr.shape[0] * scale, lr.shape[1] * scale)
    if rgb.shape[:2] != expected:
        raise ValueError(f"{guide}: the guide is {rgb.shape[1]}x{rgb.shape[0]}, but x{scale} "
                         f"of the {lr.shape[1]}x{lr.shape[0]} depth map needs "
                         f"{expected[1]}x{expected[0]}")
    sr = _upscale_depth(lr, rgb, scale, method, weights)
    levels = 2**bit_depth - 1
    pixels = np.clip(np.round(sr * levels), 0, levels).astype(np.uint8 if bit_depth == 8
                                                                else np.uint16)
    return Picture(pixels[..., None], None, source=str(depth))


def upscale(image: ImageLike, scale: int = 4, model: str | None = None) -> ImageLike:
    """Upscale one image (PIL, NumPy or torch) with `model` or the default model for `scale`."""
    name = model or default_model(scale).name
    return load(name, scale).upscale(image)


def train(
    recipe: Recipe | str | Path, out: str | Path | None = None, *, resume: bool = False,
    max_steps: int | None = None, progress: bool = True, threads: int | None = None,
    device: str | None = None,
) -> RunResult | DepthRunResult | None:
    """Train a recipe (a shipped name such as `fsrcnn_x3`, a YAML file, or a `Recipe`) into
    `out` (default `runs/NAME`); `resume` continues a killed run exactly. Under torchrun,
    every process calls this; rank 0 returns the result, the others None."""
    if not isinstance(recipe, Recipe):
        out = out or Path("runs") / Path(recipe).stem
        recipe = load_recipe(recipe)
    if out is None:
        raise ValueError("name the run folder `out` for a Recipe object")
    if isinstance(recipe.model, str) and get_model(recipe.model).guided:  # docs/depth.md
        return train_depth(recipe, Path(out), resume=resume, max_steps=max_steps,
                           progress=progress, threads=threads)
    if recipe.unpaired is not None:  # several networks in turn (docs/unsupervised.md)
        return train_unpaired(recipe, Path(out), resume=resume, max_steps=max_steps,
                              progress=progress, threads=threads, device=device)
    return _train(recipe, Path(out), resume=resume, max_steps=max_steps, progress=progress,
                  threads=threads, device=device)
