"""superres: image super-resolution with classic and deep models, measured exactly.

The public API is small::

    import superres
    up = superres.load("bicubic", scale=4)
    bigger = up.upscale(image)          # PIL image, NumPy array or torch tensor
    superres.list_models()              # every registered model
    superres.evaluate("bicubic", scale=2, datasets=["Set5"])

Imports are deferred so that `import superres` stays cheap (no torch until needed).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    import torch
    from torch import nn

    from superres.evaluation import DatasetResult
    from superres.models import ModelSpec
    from superres.upscaler import ImageLike, Upscaler

__version__ = "0.1.0"


def load(
    name: str,
    scale: int,
    device: str = "cpu",
    weights: str | Path | None = None,
    *,
    tile: int | None = None,
    tta: bool = False,
    backend: str = "torch",
    budget: float | None = None,
    max_memory: int | str | None = None,
    precision: str = "float32",
    batch: int = 8,
) -> Upscaler:
    """A registered model built for `scale`, with its shipped weights (or `weights`, a
    safetensors file), ready to `.upscale(image)`; `tile` bounds memory on large images
    (tiles of that many LR pixels) and `max_memory` (e.g. "2GB") picks the tile that fits,
    `tta` averages the 8 flips/rotations, and `backend="onnx"` runs the model through ONNX
    Runtime; `budget` caps the seconds per image of models that learn at test time (ZSSR,
    DIP); `precision="float16"` runs in half precision where a check finds it safe;
    `batch` small images of one size run together."""
    from superres.upscaler import load as _load

    return _load(name, scale, device, weights, tile=tile, tta=tta, backend=backend,
                 budget=budget, max_memory=max_memory, precision=precision, batch=batch)


def build(name: str, scale: int) -> nn.Module:
    """The bare `nn.Module` of a registered model for `scale` (untrained for learned models)."""
    from superres.models import get_model

    spec = get_model(name)
    spec.check_scale(scale)
    return spec.build(scale)


def list_models() -> list[ModelSpec]:
    """Every registered model, in registry order."""
    from superres.models import MODELS

    return list(MODELS.values())


def evaluate(
    model: str | Upscaler, scale: int, datasets: Sequence[str], device: str | torch.device = "cpu"
) -> list[DatasetResult]:
    """PSNR/SSIM of a model on test sets, with the standard protocol (Y channel, shave = scale)."""
    from superres.evaluation import evaluate as _evaluate

    upscaler = load(model, scale, device) if isinstance(model, str) else model
    return _evaluate(upscaler, datasets)


def upscale(image: ImageLike, scale: int = 4, model: str | None = None) -> ImageLike:
    """Upscale one image (PIL, NumPy or torch) with `model` or the default model for `scale`."""
    from superres.models import default_model

    name = model or default_model(scale).name
    return load(name, scale).upscale(image)


__all__ = ["build", "evaluate", "list_models", "load", "upscale"]
