"""Unpaired training data: HR patches from one set of images, LR patches from another.

Unpaired SR (CycleGAN-style, issue 22) learns from LR photos whose HR never existed, so the
two sides are drawn independently: an HR patch (patch * scale) from an HR image and an LR
patch (patch) from an LR image, each with its own flip and rotation, with no correspondence.
As in `PatchSampler`, every choice comes from one seeded generator whose state is part of a
checkpoint, and `shard=(rank, world)` draws the whole (global) batch on every rank, so the
streams stay alike, but cuts only the rank's slice of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from superres.train.patches import _augment, _to_tensor, load_images


@dataclass(frozen=True)
class _Cut:
    """One patch's random choices: image, position, flip and turns."""

    image: int
    top: int
    left: int
    flip: bool
    turns: int


def load_domain(sources: Sequence[str], color: str, progress: bool = True) -> list[np.ndarray]:
    """Every image of `sources` (registered sets or folders) as float32 H x W x C in [0, 1],
    in the model's colour space (`y` or `rgb`): one side of unpaired data."""
    return [image.hr for image in load_images(sources, (), color, progress)]


class _Side:
    """The images of one side and their sampling weights for patches of side `size`."""

    def __init__(self, images: Sequence[np.ndarray], size: int, what: str) -> None:
        self.images = [image for image in images if min(image.shape[:2]) >= size]
        if not self.images:
            raise ValueError(f"no {what} image is at least {size} px on its shorter side")
        self.size = size
        # Pick images in proportion to their number of patch positions, so big images count more.
        positions = np.array([(h - size + 1) * (w - size + 1)
                              for h, w in (image.shape[:2] for image in self.images)],
                             dtype=np.float64)
        self.weights = positions / positions.sum()

    def cut(self, cut: _Cut) -> np.ndarray:
        image, size = self.images[cut.image], self.size
        return _augment(image[cut.top : cut.top + size, cut.left : cut.left + size],
                        cut.flip, cut.turns)


class UnpairedSampler:
    """Batches of independent LR and HR patches from two sets of images, drawn with a
    seeded, checkpointable generator; `shard` = (rank, world size) makes only the rank's
    slice of the `batch`. See the module's docstring."""

    def __init__(
        self,
        lr_images: Sequence[np.ndarray],
        hr_images: Sequence[np.ndarray],
        scale: int,
        patch: int,
        batch: int,
        augment: bool,
        seed: int,
        *,
        shard: tuple[int, int] = (0, 1),
    ) -> None:
        rank, world = shard
        if not 0 <= rank < world or batch % world:
            raise ValueError(f"shard {tuple(shard)}: the rank must be in 0..world-1 and the "
                             f"batch ({batch}) a multiple of the world size")
        channels = {image.shape[2] for image in (*lr_images, *hr_images)}
        if len(channels) > 1:
            raise ValueError(f"LR and HR images have different channel counts {sorted(channels)}")
        self.scale, self.patch, self.batch, self.augment = scale, patch, batch, augment
        self.own = slice(rank * batch // world, (rank + 1) * batch // world)  # of a batch
        self.lr = _Side(lr_images, patch, "LR")
        self.hr = _Side(hr_images, patch * scale, "HR")
        self.rng = np.random.default_rng(seed)

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(LR, HR): N x C x p x p and N x C x P x P, P = patch * scale, N = batch / world
        size. The choices of the whole batch are drawn, whatever the shard, so every rank's
        stream stays alike; in the stream's order, all HR choices, then all LR ones."""
        hr = self._draws(self.hr)[self.own]
        lr = self._draws(self.lr)[self.own]
        return (_to_tensor([self.lr.cut(cut) for cut in lr]),
                _to_tensor([self.hr.cut(cut) for cut in hr]))

    def _draws(self, side: _Side) -> list[_Cut]:
        """A batch of one side's choices: images, then per patch its position, flip and turns."""
        indices = self.rng.choice(len(side.images), size=self.batch, p=side.weights)
        cuts = []
        for index in indices:
            height, width = side.images[index].shape[:2]
            top = int(self.rng.integers(0, height - side.size + 1))
            left = int(self.rng.integers(0, width - side.size + 1))
            flip, turns = False, 0
            if self.augment:
                flip, turns = bool(self.rng.integers(0, 2)), int(self.rng.integers(0, 4))
            cuts.append(_Cut(int(index), top, left, flip, turns))
        return cuts

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
