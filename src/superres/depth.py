"""Colour-guided depth SR end to end: upsample a depth map with its RGB guide, score on sets.

Methods are the classical baselines (`bicubic`, `jbu`, `guided-filter`) and every registered
guided model (`learned-jbu`, `djf`). A learned model on a registered depth set is scored
scene by scene with the weights of the leave-one-out fold that never saw that scene; on a
user's folder, and for `superres upscale`, with the weights trained on all scenes (`all`),
or with a weights file given. Scores are RMSE on the 0-255 maps, over the whole map
(`superres.metrics.depth`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from superres.classic.depth import (
    bicubic_depth,
    guided_filter_upsample,
    joint_bilateral_upsample,
)
from superres.data import get_dataset
from superres.data.depth import DepthScene, depth_scenes, is_depth_set
from superres.metrics.depth import rmse_255
from superres.models import MODELS, get_model
from superres.weights import WeightsNotFoundError, load_weights, shipped_folds

# A depth upsampler: (LR depth h x w, guide H x W x 3, both in [0, 1], scale) -> H x W.
DepthMethod = Callable[[np.ndarray, np.ndarray, int], np.ndarray]

CLASSICAL: dict[str, DepthMethod] = {
    "bicubic": lambda lr, guide, scale: bicubic_depth(lr, scale),
    "jbu": joint_bilateral_upsample,
    "guided-filter": guided_filter_upsample,
}
ALL_SCENES = "all"


def depth_methods() -> list[str]:
    """Names `superres eval`/`upscale` accept for depth: the baselines, then guided models."""
    return [*CLASSICAL, *(name for name, spec in MODELS.items() if spec.guided)]


def is_depth_method(name: str) -> bool:
    """Whether `name` is a classical depth baseline or a registered guided model."""
    return name in depth_methods()


def needs_guide(name: str) -> bool:
    """Whether `name` is a depth method only (JBU, the guided filter, a guided model), unlike
    bicubic, which upscales images too."""
    spec = MODELS.get(name)
    return spec.guided if spec is not None else name in CLASSICAL


def learned_method(model: str, scale: int, weights: str | os.PathLike[str]) -> DepthMethod:
    """A guided model with `weights` loaded, as a depth method (float32, CPU, whole map)."""
    spec = get_model(model)
    spec.check_scale(scale)
    network = spec.build(scale).eval()
    load_weights(network, Path(weights))

    @torch.no_grad()
    def run(lr: np.ndarray, guide: np.ndarray, at_scale: int) -> np.ndarray:
        if at_scale != scale:
            raise ValueError(f"this {model} was built for x{scale}, not x{at_scale}")
        size = (lr.shape[0] * scale, lr.shape[1] * scale)
        if guide.shape[:2] != size:
            raise ValueError(f"the guide is {guide.shape[1]}x{guide.shape[0]}, but x{scale} of "
                             f"a {lr.shape[1]}x{lr.shape[0]} depth map needs "
                             f"{size[1]}x{size[0]}")
        depth = torch.from_numpy(np.ascontiguousarray(lr, dtype=np.float32))[None, None]
        rgb = torch.from_numpy(np.ascontiguousarray(guide, dtype=np.float32))
        return network(depth, rgb.permute(2, 0, 1)[None])[0, 0].clamp(0, 1).numpy()

    return run


def depth_method(name: str, scale: int, weights: str | os.PathLike[str] | None = None,
                 scene: str = ALL_SCENES) -> DepthMethod:
    """The named method at `scale`; a learned one with `weights`, else its shipped fold
    weights for `scene` (the fold that left it out; `all` for anything else)."""
    if name in CLASSICAL:
        if weights is not None:
            raise ValueError(f"{name} is not learned: it takes no weights")
        return CLASSICAL[name]
    return learned_method(name, scale, fold_weights(name, weights, scene))


def fold_weights(name: str, weights: str | os.PathLike[str] | None = None,
                 scene: str = ALL_SCENES) -> Path:
    """The weights a guided model runs with: `weights` when given, else the shipped fold
    that left `scene` out, or the all-scenes fold for a scene it does not know."""
    spec = get_model(name)
    if not spec.guided:
        raise ValueError(f"{spec.name} takes no guide; depth methods: {', '.join(depth_methods())}")
    if weights is not None:
        return Path(weights)
    folds = shipped_folds(spec.name)
    if ALL_SCENES not in folds:
        raise WeightsNotFoundError(f"no weights are shipped for {spec.name}; train its "
                                   "leave-one-out recipe (docs/depth.md) and pass --weights")
    return folds.get(scene, folds[ALL_SCENES])


@dataclass(frozen=True)
class DepthScore:
    """One scene's RMSE (0-255) and the weights that made it (empty for a baseline)."""

    scene: str
    rmse: float
    weights: str = ""


@dataclass(frozen=True)
class DepthResult:
    """Mean RMSE over a depth set's scenes (the mean of per-scene values, as papers do)."""

    dataset: str
    images: int
    rmse: float
    seconds: float  # time spent upsampling
    per_image: list[DepthScore] = field(default_factory=list)

    def to_json(self, per_image: bool = False) -> dict:
        data = {"dataset": self.dataset, "images": self.images, "rmse": self.rmse,
                "seconds": self.seconds}
        if per_image:
            data["per_image"] = [vars(score) for score in self.per_image]
        return data


def evaluate_depth(method: str, scale: int, dataset: str | os.PathLike[str],
                   weights: str | os.PathLike[str] | None = None) -> DepthResult:
    """Score `method` at `scale` on a depth set (registered or a `depth/` + `guide/`
    folder): each scene's LR (released, or made as the release made it) upsampled with its
    guide, RMSE against the ground truth. A learned model without `weights` uses the shipped
    fold that left each scene out (registered sets) or the all-scenes weights (folders)."""
    name, scenes = depth_scenes(dataset, (scale,))
    registered = _is_registered(dataset)
    scores, seconds = [], 0.0
    for scene in scenes:
        fold = scene.name if registered else ALL_SCENES
        upsample = depth_method(method, scale, weights, fold)
        start = time.perf_counter()
        sr = upsample(_lr_of(scene, scale), scene.guide, scale)
        seconds += time.perf_counter() - start
        used = "" if method in CLASSICAL else fold_weights(method, weights, fold).name
        scores.append(DepthScore(scene.name, rmse_255(sr, scene.depth), used))
    return DepthResult(name, len(scores), float(np.mean([s.rmse for s in scores])), seconds,
                       scores)


def _is_registered(dataset: str | os.PathLike[str]) -> bool:
    try:
        get_dataset(os.fspath(dataset))
    except KeyError:
        return False
    return True


def _lr_of(scene: DepthScene, scale: int) -> np.ndarray:
    height, width = scene.depth.shape
    if height % scale or width % scale:
        raise ValueError(f"{scene.name}: its {width}x{height} depth map does not divide by "
                         f"{scale}")
    return scene.lr(scale)


def upscale_depth(depth: np.ndarray, guide: np.ndarray, scale: int, method: str = "learned-jbu",
                  weights: str | os.PathLike[str] | None = None) -> np.ndarray:
    """Upsample one LR depth map (h x w, [0, 1]) by `scale` with its HR guide (H x W x 3,
    [0, 1], H = scale h, W = scale w); a learned model uses its all-scenes weights unless
    given `weights`."""
    return depth_method(method, scale, weights)(depth, guide, scale)


__all__ = ["CLASSICAL", "DepthResult", "DepthScore", "depth_method", "depth_methods",
           "evaluate_depth", "fold_weights", "is_depth_method", "is_depth_set", "needs_guide",
           "upscale_depth"]
