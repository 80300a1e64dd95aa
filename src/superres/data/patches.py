"""Training pairs: HR images, their bicubic LR, and random aligned patches of both.

The LR of each whole image is made once with the evaluation's own degradation (MATLAB
bicubic, rounded to uint8), so training sees exactly the inputs that evaluation will.
Patches are then cut from memory; the sampler's random state is part of a checkpoint, so
a resumed run draws the same batches as an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from superres.color import rgb_to_y
from superres.data.registry import dataset_images
from superres.degrade import bicubic_lr, modcrop
from superres.io import read_image


def _as_float(image: np.ndarray, color: str) -> np.ndarray:
    """uint8 H x W x C -> float32 H x W x C' in [0, 1]: Y (C' = 1) or RGB (C' = 3)."""
    x = image.astype(np.float32) / 255.0
    if color == "y":
        return x if x.shape[2] == 1 else rgb_to_y(x).astype(np.float32)
    return np.repeat(x, 3, axis=2) if x.shape[2] == 1 else x


def load_pairs(
    datasets: Sequence[str], scale: int, color: str, progress: bool = True
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(LR, HR) float32 arrays for every image of the training sets."""
    paths: list[Path] = []
    for dataset in datasets:
        paths += dataset_images(dataset)[1]
    pairs = []
    for path in tqdm(paths, desc=f"preparing x{scale} pairs", unit="img", disable=not progress,
                     leave=False):
        hr = modcrop(read_image(path).pixels, scale)
        if hr.dtype != np.uint8:
            hr = (hr // 257).astype(np.uint8)
        pairs.append((_as_float(bicubic_lr(hr, scale), color), _as_float(hr, color)))
    return pairs


class PatchSampler:
    """Random aligned LR/HR patch batches, drawn with a seeded, checkpointable generator."""

    def __init__(
        self,
        pairs: list[tuple[np.ndarray, np.ndarray]],
        scale: int,
        patch: int,
        batch: int,
        augment: bool,
        seed: int,
    ) -> None:
        self.pairs = [(lr, hr) for lr, hr in pairs if min(lr.shape[:2]) >= patch]
        if not self.pairs:
            raise ValueError(f"no training image is at least {patch} px after x{scale} downscaling")
        self.scale, self.patch, self.batch, self.augment = scale, patch, batch, augment
        # Pick images in proportion to their number of patch positions, so big images count more.
        positions = np.array(
            [(lr.shape[0] - patch + 1) * (lr.shape[1] - patch + 1) for lr, _ in self.pairs],
            dtype=np.float64,
        )
        self.weights = positions / positions.sum()
        self.rng = np.random.default_rng(seed)

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """LR (N x C x p x p) and HR (N x C x sp x sp) float32 tensors."""
        p, s = self.patch, self.scale
        lrs, hrs = [], []
        for index in self.rng.choice(len(self.pairs), size=self.batch, p=self.weights):
            lr, hr = self.pairs[index]
            top = int(self.rng.integers(0, lr.shape[0] - p + 1))
            left = int(self.rng.integers(0, lr.shape[1] - p + 1))
            lr_patch = lr[top : top + p, left : left + p]
            hr_patch = hr[top * s : (top + p) * s, left * s : (left + p) * s]
            if self.augment:
                flip, turns = bool(self.rng.integers(0, 2)), int(self.rng.integers(0, 4))
                lr_patch, hr_patch = (_augment(x, flip, turns) for x in (lr_patch, hr_patch))
            lrs.append(lr_patch)
            hrs.append(hr_patch)
        return _to_tensor(lrs), _to_tensor(hrs)

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]


def _augment(x: np.ndarray, flip: bool, turns: int) -> np.ndarray:
    x = x[:, ::-1] if flip else x
    return np.rot90(x, turns)


def _to_tensor(patches: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(np.stack(patches).transpose(0, 3, 1, 2)))
