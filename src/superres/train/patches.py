"""Training pairs: HR images, their LR, and random aligned patches of both.

By default the LR of each whole image is made once per training scale with the evaluation's
own degradation (MATLAB bicubic, rounded to uint8), so training sees exactly the inputs that
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

Any other degradation (`superres.image.degrade.parse_degradation`: BD, DN, JPEG, Real-ESRGAN)
is made per sample, as a random one must be, from the 8-bit HR pixels around the patch, with a
generator seeded by a number drawn from the sampler's stream for every sample.

For distributed training, `shard=(rank, world)` makes a sampler draw the random choices of
the whole (global) batch, so every rank's stream stays alike, but cut and degrade only the
rank's slice of it: the slices of all ranks make up the batch of one sampler.
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
from superres.image.degrade import DegradationSpec, bicubic_lr, parse_degradation
from superres.image.io import read_image
from superres.image.resize import imresize
from superres.nn.upsamplers import Interpolate

CUBIC_REACH = 2  # the bicubic kernel spans 4 input pixels: 2 on either side of a sample
# LR pixels kept around a patch cut from a downscaled window: the reach of the HR -> LR
# bicubic, then that of the LR -> HR interpolation of multi-scale inputs.
WINDOW_MARGIN = 2 * CUBIC_REACH
# LR pixels degraded beyond each edge of a patch (where the image has them), so that its LR is
# the whole image's wherever a degradation reaches no further: bicubic reaches CUBIC_REACH,
# RDN's BD kernel (12 taps at x2) 3.
DEGRADE_MARGIN = 2 * CUBIC_REACH

Pair = tuple[np.ndarray, np.ndarray]  # (LR, HR), float32 H x W x C


@dataclass(frozen=True)
class TrainingImage:
    """One HR training image in the model's colour space, its bicubic LR per scale, and, for
    a degradation made per patch, its 8-bit pixels."""

    hr: np.ndarray  # float32 H x W x C, not modcropped
    lr: dict[int, np.ndarray]  # scale -> float32 LR of the HR modcropped to that scale
    pixels: np.ndarray | None = None  # uint8 H x W x C as read, to degrade per patch


@dataclass(frozen=True)
class _Draw:
    """One sample's random choices. `factor` < 1: the patch lies at the margin of a window
    of the HR taken at `origin` and downscaled by `factor`; `seed`: its degradation's."""

    image: TrainingImage
    scale: int
    factor: float
    origin: tuple[int, int]
    top: int
    left: int
    seed: int | None
    flip: bool
    turns: int


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
    datasets: Sequence[str], scales: Sequence[int], color: str, progress: bool = True,
    degradation: DegradationSpec | Sequence[DegradationSpec] = "bicubic",
) -> list[TrainingImage]:
    """Every image of the training sets, with its bicubic LR at each of `scales` where
    `degradation` is (or, for a curriculum's list, includes) bicubic, and its pixels where it
    is (or includes) another degradation, made per patch by the sampler."""
    kinds = {parse_degradation(d).is_bicubic for d in (
        degradation if isinstance(degradation, list) else [degradation])}
    per_patch, bicubic = False in kinds, True in kinds
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
        lrs = {scale: _as_float(bicubic_lr(pixels, scale), color)
               for scale in (scales if bicubic else ())}
        images.append(TrainingImage(_as_float(pixels, color), lrs, pixels if per_patch else None))
    return images


class PatchSampler:
    """Random aligned LR/HR patch batches, drawn with a seeded, checkpointable generator.

    `images` are TrainingImages, or (LR, HR) pairs at `scale`. `scales` (multi-scale) and
    `factors` (scale augmentation) are drawn per sample; a `degradation` other than bicubic
    is made per sample from images loaded with it; `shard` = (rank, world size) makes only
    the rank's slice of the `batch`. See the module's docstring.
    """

    targets: tuple[str, ...] = ()  # no targets beside HR (see `MultiSupervised.targets`)

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
        degradation: DegradationSpec = "bicubic",
        shard: tuple[int, int] = (0, 1),
    ) -> None:
        self.scale, self.patch, self.batch, self.augment = scale, patch, batch, augment
        self.scales, self.factors = tuple(scales), tuple(factors)
        self.hr_patch = patch * scale  # the same HR patch side at every scale
        rank, world = shard
        if not 0 <= rank < world or batch % world:
            raise ValueError(f"shard {tuple(shard)}: the rank must be in 0..world-1 and the "
                             f"batch ({batch}) a multiple of the world size")
        self.own = slice(rank * batch // world, (rank + 1) * batch // world)  # of a batch
        parsed = parse_degradation(degradation)
        self.degradation = None if parsed.is_bicubic else parsed  # None: precomputed bicubic
        if self.degradation and (self.scales or self.factors):
            raise ValueError(f"degradation {parsed}: multi-scale training and scale "
                             "augmentation use bicubic LR only")
        needed = self.scales or (scale,)
        loaded = [x if isinstance(x, TrainingImage) else TrainingImage(x[1], {scale: x[0]})
                  for x in images]
        if self.degradation and any(image.pixels is None for image in loaded):
            raise ValueError(f"degradation {parsed} is made per patch from 8-bit pixels: load "
                             "the images with load_images(..., degradation=...)")
        missing = sorted({s for image in loaded for s in needed
                          if not self.degradation and s not in image.lr})
        if missing:
            raise ValueError(f"training images have no LR at scale(s) {missing}")
        self.images = [image for image in loaded
                       if all(min(self._lr_size(image, s)) * s >= self.hr_patch for s in needed)]
        if not self.images:
            raise ValueError(f"no training image is at least {patch} px after x{scale} downscaling")
        # Pick images in proportion to their number of patch positions, so big images count more.
        positions = np.array(
            [(rows - patch + 1) * (cols - patch + 1)
             for rows, cols in (self._lr_size(image, scale) for image in self.images)],
            dtype=np.float64,
        )
        self.weights = positions / positions.sum()
        self.upsamplers = {s: Interpolate(s) for s in self.scales}
        self.rng = np.random.default_rng(seed)

    def sample(self) -> Batch:
        """A batch: N x C x p x p LR (N x C x P x P interpolated for multi-scale) inputs and
        N x C x P x P HR targets, P = patch * scale; N = batch / world size. The choices of
        the whole batch are drawn, whatever the shard, so every rank's stream stays alike."""
        draws = [self._draw(self.images[index])
                 for index in self.rng.choice(len(self.images), size=self.batch, p=self.weights)]
        mine = draws[self.own]
        pairs = [self._make(draw) for draw in mine]
        return Batch(_to_tensor([pair[0] for pair in pairs]),
                     _to_tensor([pair[1] for pair in pairs]), tuple(d.scale for d in mine))

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs, HR) of `sample()`."""
        batch = self.sample()
        return batch.inputs, batch.hr

    def _lr_size(self, image: TrainingImage, scale: int) -> tuple[int, int]:
        if self.degradation:
            return image.hr.shape[0] // scale, image.hr.shape[1] // scale
        return image.lr[scale].shape[:2]

    def _position(self, last: int) -> int:
        return int(self.rng.integers(0, last + 1))

    def _draw(self, image: TrainingImage) -> _Draw:
        """A sample's random choices, in the stream's order: scale, factor, the window's and
        the patch's position (on the LR grid for LR inputs, at the window's margin in a
        downscaled window), the degradation's seed, flip and turns."""
        scale = int(self.rng.choice(self.scales)) if self.scales else self.scale
        factor = float(self.rng.choice(self.factors)) if self.factors else 1.0
        factor, origin = self._window(image.hr, factor, scale) if factor < 1 else (1.0, (0, 0))
        unit = scale if self.scales else 1  # the patch's position is in HR pixels if scales
        if factor < 1:
            top = left = WINDOW_MARGIN * unit
        else:
            last = (n * unit - (self.hr_patch if self.scales else self.patch)
                    for n in self._lr_size(image, scale))
            top, left = (self._position(n) for n in last)
        seed = int(self.rng.integers(2**63)) if self.degradation else None
        flip, turns = False, 0
        if self.augment:
            flip, turns = bool(self.rng.integers(0, 2)), int(self.rng.integers(0, 4))
        return _Draw(image, scale, factor, origin, top, left, seed, flip, turns)

    def _make(self, draw: _Draw) -> Pair:
        """The (input, HR) patch of a sample's choices."""
        image, scale = draw.image, draw.scale
        if draw.factor < 1:
            lr, hr = self._downscaled_window(image.hr, draw.factor, scale, draw.origin)
            source, hr_patch = self._cut(lr, hr, scale, draw.top, draw.left)
        elif draw.seed is not None:
            source, hr_patch = self._degraded(draw)
        else:
            source, hr_patch = self._cut(image.lr[scale], image.hr, scale, draw.top, draw.left)
        if self.augment:
            source, hr_patch = (_augment(x, draw.flip, draw.turns) for x in (source, hr_patch))
        return source, hr_patch

    def _cut(self, lr: np.ndarray, hr: np.ndarray, scale: int, top: int, left: int) -> Pair:
        """The aligned (input, HR) patch at (top, left): LR pixels for LR inputs, HR pixels
        of the interpolated LR for multi-scale."""
        size = self.hr_patch
        if not self.scales:
            p = self.patch
            return (lr[top : top + p, left : left + p],
                    hr[top * scale : top * scale + size, left * scale : left * scale + size])
        return self._interpolated(lr, scale, top, left), hr[top : top + size, left : left + size]

    def _degraded(self, draw: _Draw) -> Pair:
        """The patch at (top, left) of the LR grid, its LR made by the degradation from the HR
        pixels of the patch and DEGRADE_MARGIN LR pixels around it, where the image has them."""
        pixels, scale, p, size = draw.image.pixels, draw.scale, self.patch, self.hr_patch
        rows, cols = (
            slice(max(start - DEGRADE_MARGIN, 0), min(start + p + DEGRADE_MARGIN, length // scale))
            for start, length in ((draw.top, pixels.shape[0]), (draw.left, pixels.shape[1]))
        )
        window = pixels[rows.start * scale : rows.stop * scale,
                        cols.start * scale : cols.stop * scale]
        lr = self.degradation(window, scale, np.random.default_rng(draw.seed))
        top, left = draw.top - rows.start, draw.left - cols.start
        color = "y" if draw.image.hr.shape[2] == 1 else "rgb"  # as `load_images` made `hr`
        hr_top, hr_left = draw.top * scale, draw.left * scale
        return (_as_float(lr[top : top + p, left : left + p], color),
                draw.image.hr[hr_top : hr_top + size, hr_left : hr_left + size])

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

    def _window_sides(self, scale: int) -> tuple[int, int]:
        """The side of a downscaled window (room for a patch and its margins), and that plus
        the CUBIC_REACH pixels per edge that the downscale spoils."""
        side = (math.ceil(self.hr_patch / scale) + 2 * WINDOW_MARGIN) * scale
        return side, side + 2 * CUBIC_REACH

    def _window(self, hr: np.ndarray, factor: float, scale: int) -> tuple[float, tuple[int, int]]:
        """The factor of a downscaled window and where its source lies in `hr`; in an image
        too small for the window, the factor is raised to the least that fits (as MS-LapSRN's
        code does), and 1 means no window."""
        needed = self._window_sides(scale)[1]
        shortest = min(hr.shape[:2])
        factor = max(factor, needed / shortest)
        if factor >= 1:
            return 1.0, (0, 0)
        source = min(math.ceil(needed / factor), shortest)
        return factor, (self._position(hr.shape[0] - source), self._position(hr.shape[1] - source))

    def _downscaled_window(
        self, hr: np.ndarray, factor: float, scale: int, origin: tuple[int, int]
    ) -> Pair:
        """(LR, HR) of the window of `hr` at `origin` downscaled by `factor`, both rounded to
        8-bit levels."""
        side, needed = self._window_sides(scale)
        source = min(math.ceil(needed / factor), min(hr.shape[:2]))
        top, left = origin
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
