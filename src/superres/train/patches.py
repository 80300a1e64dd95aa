"""Training pairs: HR images, their bicubic LR, and random aligned patches of both.

The LR of each whole image is made once per training scale with the evaluation's own
degradation (MATLAB bicubic, rounded to uint8), so training sees exactly the inputs that
evaluation will. Patches are then cut from memory; the sampler's random state is part of a
checkpoint, so a resumed run draws the same batches as an uninterrupted one.

Two options change what a sample is:

- multi-scale (VDSR): each sample's scale is drawn from a list, and its LR is bicubic-
  interpolated to the HR patch size, as a pre-upsampling network's first step would do, so
  samples of several scales share one batch. The interpolation is computed from the LR
  pixels around the patch only and equals that of the whole image exactly.
- scale augmentation (LapSRN): each sample's HR image is first downscaled by a factor drawn
  from a list. A window of the image is downscaled, rounded to 8-bit levels (the new HR), and
  degraded to its LR; the patch is cut far enough inside that the window's edges never show.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from superres.data.registry import dataset_images
from superres.image.color import rgb_to_y
from superres.image.degrade import bicubic_lr
from superres.image.io import read_image
from superres.image.resize import imresize
from superres.nn.upsamplers import Interpolate

CUBIC_REACH = 2  # the bicubic kernel spans 4 input pixels: 2 on either side of a sample
# LR pixels kept around a patch cut from a downscaled window: the reach of the HR -> LR
# bicubic, then that of the LR -> HR interpolation of multi-scale inputs.
WINDOW_MARGIN = 2 * CUBIC_REACH

Pair = tuple[np.ndarray, np.ndarray]  # (LR, HR), float32 H x W x C


@dataclass(frozen=True)
class TrainingImage:
    """One HR training image in the model's colour space, and its bicubic LR per scale."""

    hr: np.ndarray  # float32 H x W x C, not modcropped
    lr: dict[int, np.ndarray]  # scale -> float32 LR of the HR modcropped to that scale


@dataclass(frozen=True)
class Batch:
    """The network's inputs (LR, or for multi-scale the LR interpolated to the HR size),
    the HR targets, and each sample's scale."""

    inputs: torch.Tensor
    hr: torch.Tensor
    scales: tuple[int, ...]


def _as_float(image: np.ndarray, color: str) -> np.ndarray:
    """uint8 H x W x C -> float32 H x W x C' in [0, 1]: Y (C' = 1) or RGB (C' = 3)."""
    x = image.astype(np.float32) / 255.0
    if color == "y":
        return x if x.shape[2] == 1 else rgb_to_y(x).astype(np.float32)
    return np.repeat(x, 3, axis=2) if x.shape[2] == 1 else x


def load_images(
    datasets: Sequence[str], scales: Sequence[int], color: str, progress: bool = True
) -> list[TrainingImage]:
    """Every image of the training sets, with its LR at each of `scales`."""
    paths: list[Path] = []
    for dataset in datasets:
        paths += dataset_images(dataset)[1]
    images = []
    label = "/".join(f"x{scale}" for scale in scales)
    for path in tqdm(paths, desc=f"preparing {label} pairs", unit="img", disable=not progress,
                     leave=False):
        pixels = read_image(path).pixels
        if pixels.dtype != np.uint8:
            pixels = (pixels // 257).astype(np.uint8)
        lrs = {scale: _as_float(bicubic_lr(pixels, scale), color) for scale in scales}
        images.append(TrainingImage(_as_float(pixels, color), lrs))
    return images


class PatchSampler:
    """Random aligned LR/HR patch batches, drawn with a seeded, checkpointable generator.

    `images` are TrainingImages, or (LR, HR) pairs at `scale`. `scales` (multi-scale) and
    `factors` (scale augmentation) are drawn per sample; see the module's docstring.
    """

    def __init__(
        self,
        images: Sequence[TrainingImage | Pair],
        scale: int,
        patch: int,
        batch: int,
        augment: bool,
        seed: int,
        *,
        scales: Sequence[int] = (),
        factors: Sequence[float] = (),
    ) -> None:
        self.scale, self.patch, self.batch, self.augment = scale, patch, batch, augment
        self.scales, self.factors = tuple(scales), tuple(factors)
        self.hr_patch = patch * scale  # the same HR patch side at every scale
        needed = self.scales or (scale,)
        loaded = [x if isinstance(x, TrainingImage) else TrainingImage(x[1], {scale: x[0]})
                  for x in images]
        missing = sorted({s for image in loaded for s in needed if s not in image.lr})
        if missing:
            raise ValueError(f"training images have no LR at scale(s) {missing}")
        self.images = [image for image in loaded
                       if all(min(image.lr[s].shape[:2]) * s >= self.hr_patch for s in needed)]
        if not self.images:
            raise ValueError(f"no training image is at least {patch} px after x{scale} downscaling")
        # Pick images in proportion to their number of patch positions, so big images count more.
        positions = np.array(
            [(lr.shape[0] - patch + 1) * (lr.shape[1] - patch + 1)
             for lr in (image.lr[scale] for image in self.images)],
            dtype=np.float64,
        )
        self.weights = positions / positions.sum()
        self.upsamplers = {s: Interpolate(s) for s in self.scales}
        self.rng = np.random.default_rng(seed)

    def sample(self) -> Batch:
        """A batch: N x C x p x p LR (N x C x P x P interpolated for multi-scale) inputs and
        N x C x P x P HR targets, P = patch * scale."""
        inputs, hrs, scales = [], [], []
        for index in self.rng.choice(len(self.images), size=self.batch, p=self.weights):
            image = self.images[index]
            scale = int(self.rng.choice(self.scales)) if self.scales else self.scale
            factor = float(self.rng.choice(self.factors)) if self.factors else 1.0
            window = self._downscaled_window(image.hr, factor, scale) if factor < 1 else None
            if window:
                source, hr_patch = self._cut(*window, scale, WINDOW_MARGIN)
            else:
                source, hr_patch = self._cut(image.lr[scale], image.hr, scale, 0)
            if self.augment:
                flip, turns = bool(self.rng.integers(0, 2)), int(self.rng.integers(0, 4))
                source, hr_patch = (_augment(x, flip, turns) for x in (source, hr_patch))
            inputs.append(source)
            hrs.append(hr_patch)
            scales.append(scale)
        return Batch(_to_tensor(inputs), _to_tensor(hrs), tuple(scales))

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs, HR) of `sample()`."""
        batch = self.sample()
        return batch.inputs, batch.hr

    def _position(self, last: int) -> int:
        return int(self.rng.integers(0, last + 1))

    def _cut(self, lr: np.ndarray, hr: np.ndarray, scale: int, margin: int) -> Pair:
        """An aligned (input, HR) patch: at `margin` LR pixels from the top left if given,
        else anywhere in the image (on the LR grid for LR inputs)."""
        size = self.hr_patch
        if not self.scales:
            p = self.patch
            if margin:
                top = left = margin
            else:
                top, left = self._position(lr.shape[0] - p), self._position(lr.shape[1] - p)
            return (lr[top : top + p, left : left + p],
                    hr[top * scale : top * scale + size, left * scale : left * scale + size])
        if margin:
            top = left = margin * scale
        else:
            top = self._position(lr.shape[0] * scale - size)
            left = self._position(lr.shape[1] * scale - size)
        return self._interpolated(lr, scale, top, left), hr[top : top + size, left : left + size]

    def _interpolated(self, lr: np.ndarray, scale: int, top: int, left: int) -> np.ndarray:
        """The HR-size patch at (top, left) of the bicubic interpolation of the whole `lr`,
        computed from the LR pixels within the kernel's reach of it."""
        size = self.hr_patch
        rows, cols = (
            slice(max(start // scale - CUBIC_REACH, 0),
                  min((start + size - 1) // scale + CUBIC_REACH + 1, length))
            for start, length in ((top, lr.shape[0]), (left, lr.shape[1]))
        )
        window = torch.from_numpy(np.ascontiguousarray(lr[rows, cols].transpose(2, 0, 1)))
        with torch.no_grad():
            up = self.upsamplers[scale](window[None])[0].numpy().transpose(1, 2, 0)
        top, left = top - rows.start * scale, left - cols.start * scale
        return up[top : top + size, left : left + size]

    def _downscaled_window(self, hr: np.ndarray, factor: float, scale: int) -> Pair | None:
        """(LR, HR) of a window of `hr` downscaled by `factor`, with room for a patch and its
        margins; in an image too small for that, the factor is raised to the least that fits
        (as MS-LapSRN's code does), and None means it reached 1."""
        lr_side = math.ceil(self.hr_patch / scale) + 2 * WINDOW_MARGIN
        side = lr_side * scale
        needed = side + 2 * CUBIC_REACH  # the downscale spoils CUBIC_REACH pixels per edge
        shortest = min(hr.shape[:2])
        factor = max(factor, needed / shortest)
        if factor >= 1:
            return None
        source = min(math.ceil(needed / factor), shortest)
        top, left = self._position(hr.shape[0] - source), self._position(hr.shape[1] - source)
        downscaled = imresize(hr[top : top + source, left : left + source], factor)
        window = _as_8bit(downscaled[CUBIC_REACH : CUBIC_REACH + side,
                                     CUBIC_REACH : CUBIC_REACH + side])
        return _as_8bit(imresize(window, 1 / scale)), window

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]


def _as_8bit(x: np.ndarray) -> np.ndarray:
    """Round to the levels of an 8-bit image, as a saved image (and evaluation's LR) is."""
    return (np.round(np.clip(x, 0.0, 1.0) * 255.0) / 255.0).astype(np.float32)


def _augment(x: np.ndarray, flip: bool, turns: int) -> np.ndarray:
    x = x[:, ::-1] if flip else x
    return np.rot90(x, turns)


def _to_tensor(patches: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(np.stack(patches).transpose(0, 3, 1, 2)))
