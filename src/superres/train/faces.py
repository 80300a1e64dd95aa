"""Training batches of whole aligned faces with their landmark heatmaps, for face SR networks
whose prior branch learns the landmarks (FSRNet).

A face network sees the whole aligned face, never a patch of it: where the eyes and mouth lie
is what its prior learns. Each face's LR is made once with the evaluation's degradation
(MATLAB bicubic, rounded to uint8); augmentation is a left-right mirror only (a face upside
down or on its side is not a face the aligned test sets hold), which mirrors the landmarks
and swaps left and right points before their heatmaps are drawn. The random state is part of
a checkpoint, as the patch sampler's is, so a resumed run draws the same batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from superres.data.landmarks import dataset_landmarks, flip_landmarks, render_heatmaps
from superres.image.degrade import bicubic_lr
from superres.image.io import read_image

HEATMAP_STRIDE = 2  # FSRNet predicts the heatmaps at half the HR size
# The Gaussians' width in heatmap pixels. Stacked hourglasses use 1 on a 64-pixel grid; a face
# seen through 16 x 16 LR pixels places a point to about one LR pixel, 4 heatmap pixels.
HEATMAP_SIGMA = 2.0


@dataclass(frozen=True)
class Face:
    """One aligned training face: HR and LR as float32 H x W x 3 in [0, 1], and its 68 x 2
    landmarks in HR pixel coordinates."""

    hr: np.ndarray
    lr: np.ndarray
    landmarks: np.ndarray


def load_faces(datasets: Sequence[str], scale: int) -> list[Face]:
    """Every face of the training sets with its bicubic LR at `scale` and its landmarks; the
    faces' sides must be multiples of `scale` (128 x 128 aligned crops are)."""
    faces = []
    for dataset in datasets:
        for path, landmarks in dataset_landmarks(dataset).items():
            pixels = read_image(path).pixels
            if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
                raise ValueError(f"{path.name}: face training images are 8-bit RGB")
            if pixels.shape[0] % scale or pixels.shape[1] % scale:
                raise ValueError(f"{path.name}: a face of {pixels.shape[1]}x{pixels.shape[0]} "
                                 f"pixels does not divide by x{scale}")
            faces.append(Face(pixels.astype(np.float32) / 255.0,
                              bicubic_lr(pixels, scale).astype(np.float32) / 255.0, landmarks))
    if not faces:
        raise ValueError(f"no face in {', '.join(datasets)}")
    return faces


class FaceSampler:
    """Random batches of (LR, HR, landmark heatmaps) of whole faces, mirrored at random when
    `augment`; seeded and checkpointable like `PatchSampler`. `shard` = (rank, world size)
    draws the whole batch's choices and makes the rank's slice of it."""

    targets = ("heatmaps",)

    def __init__(self, faces: Sequence[Face], batch: int, augment: bool, seed: int, *,
                 shard: tuple[int, int] = (0, 1)) -> None:
        rank, world = shard
        if not 0 <= rank < world or batch % world:
            raise ValueError(f"shard {tuple(shard)}: the rank must be in 0..world-1 and the "
                             f"batch ({batch}) a multiple of the world size")
        sizes = {face.hr.shape for face in faces}
        if len(sizes) != 1:
            raise ValueError(f"faces of one batch must share a size, not {sorted(sizes)}")
        self.faces, self.batch, self.augment = list(faces), batch, augment
        self.own = slice(rank * batch // world, (rank + 1) * batch // world)
        self.rng = np.random.default_rng(seed)

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """N x 3 x h x w LR, N x 3 x H x W HR and N x 68 x H/2 x W/2 heatmaps."""
        indices = self.rng.choice(len(self.faces), size=self.batch)
        flips = self.rng.integers(0, 2, size=self.batch) if self.augment else [0] * self.batch
        samples = [self._sample(self.faces[i], bool(flip))
                   for i, flip in list(zip(indices, flips, strict=True))[self.own]]
        return tuple(torch.from_numpy(np.ascontiguousarray(np.stack(parts)))  # type: ignore[return-value]
                     for parts in zip(*samples, strict=True))

    @staticmethod
    def _sample(face: Face, flip: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        lr, hr, points = face.lr, face.hr, face.landmarks
        if flip:
            lr, hr, points = lr[:, ::-1], hr[:, ::-1], flip_landmarks(points, hr.shape[1])
        heatmaps = render_heatmaps(points, hr.shape[0] // HEATMAP_STRIDE, HEATMAP_STRIDE,
                                   HEATMAP_SIGMA)
        return lr.transpose(2, 0, 1), hr.transpose(2, 0, 1), heatmaps

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
