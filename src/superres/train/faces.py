"""Training batches of whole aligned faces with their landmark heatmaps, for face SR networks
whose prior branch learns the landmarks (FSRNet).

A face network sees the whole aligned face, never a patch of it: where the eyes and mouth lie
is what its prior learns. Each face's LR is made once with the evaluation's degradation
(MATLAB bicubic, rounded to uint8); augmentation is a left-right mirror (a face upside
down or on its side is not a face the aligned test sets hold), which mirrors the landmarks
and swaps left and right points before their heatmaps are drawn, and optionally a jitter of
the crop (a zoom about the centre and a shift, the landmarks moved with the pixels and the LR
made again from the moved face): the test sets' faces are not cropped as the training faces
are. The random state is part of a checkpoint, as the patch sampler's is, so a resumed run
draws the same batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

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


@dataclass(frozen=True)
class Jitter:
    """One face's crop jitter: output pixel p shows the face's pixel at
    centre + zoom * (p - centre) + shift, so zoom > 1 is a wider view (a smaller face)."""

    zoom: float = 1.0
    shift: tuple[float, float] = (0.0, 0.0)  # x, y in HR pixels

    @staticmethod
    def draw(rng: np.random.Generator, count: int, zoom: float, shift: float) -> list[Jitter]:
        """`count` jitters: zooms drawn log-uniformly in [1/zoom, zoom], then shifts of up to
        `shift` pixels along each axis."""
        zooms = np.exp(rng.uniform(-np.log(zoom), np.log(zoom), count))
        shifts = rng.uniform(-shift, shift, (count, 2))
        return [Jitter(float(z), (float(x), float(y)))
                for z, (x, y) in zip(zooms, shifts, strict=True)]

    def points(self, points: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        """Where landmarks (N x 2, x then y, pixel centres) of a face of `shape` (H, W, ...)
        land."""
        centre = (np.array([shape[1], shape[0]]) - 1) / 2
        return (centre + (points - centre - np.asarray(self.shift)) / self.zoom).astype(
            points.dtype)

    def pixels(self, image: np.ndarray) -> np.ndarray:
        """The jittered face (float H x W x C in [0, 1] in, uint8 out, as a saved face is):
        bicubic, edges repeated."""
        height, width = image.shape[:2]
        axes = [(size - 1) / 2 + self.zoom * (np.arange(size) - (size - 1) / 2) + offset
                for size, offset in ((width, self.shift[0]), (height, self.shift[1]))]
        xs, ys = np.meshgrid(*axes)
        grid = np.stack([(2 * xs + 1) / width - 1, (2 * ys + 1) / height - 1], -1)
        source = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None].double()
        moved = F.grid_sample(source, torch.from_numpy(grid)[None], mode="bicubic",
                              padding_mode="border", align_corners=False)[0]
        return (moved.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()


class FaceSampler:
    """Random batches of (LR, HR, landmark heatmaps) of whole faces, mirrored at random when
    `augment`, and their crops jittered (`zoom`: factors drawn log-uniformly in [1/zoom, zoom];
    `shift`: up to that many HR pixels each way); seeded and checkpointable like
    `PatchSampler`. `shard` = (rank, world size) draws the whole batch's choices and makes the
    rank's slice of it."""

    targets = ("heatmaps",)

    def __init__(self, faces: Sequence[Face], batch: int, augment: bool, seed: int, *,
                 zoom: float = 1.0, shift: float = 0.0,
                 shard: tuple[int, int] = (0, 1)) -> None:
        rank, world = shard
        if not 0 <= rank < world or batch % world:
            raise ValueError(f"shard {tuple(shard)}: the rank must be in 0..world-1 and the "
                             f"batch ({batch}) a multiple of the world size")
        if zoom < 1 or shift < 0:
            raise ValueError(f"face jitter: zoom {zoom} must be 1 or more and shift {shift} "
                             "0 or more")
        sizes = {face.hr.shape for face in faces}
        if len(sizes) != 1:
            raise ValueError(f"faces of one batch must share a size, not {sorted(sizes)}")
        self.faces, self.batch, self.augment = list(faces), batch, augment
        self.zoom, self.shift = zoom, shift
        self.own = slice(rank * batch // world, (rank + 1) * batch // world)
        self.rng = np.random.default_rng(seed)

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """N x 3 x h x w LR, N x 3 x H x W HR and N x 68 x H/2 x W/2 heatmaps."""
        indices = self.rng.choice(len(self.faces), size=self.batch)
        flips = self.rng.integers(0, 2, size=self.batch) if self.augment else [0] * self.batch
        jitters: list[Jitter | None] = [None] * self.batch
        if self.zoom > 1 or self.shift > 0:  # drawn only then: plain runs resume as before
            jitters = [*Jitter.draw(self.rng, self.batch, self.zoom, self.shift)]
        samples = [self._sample(self.faces[i], bool(flip), jitter) for i, flip, jitter
                   in list(zip(indices, flips, jitters, strict=True))[self.own]]
        return tuple(torch.from_numpy(np.ascontiguousarray(np.stack(parts)))  # type: ignore[return-value]
                     for parts in zip(*samples, strict=True))

    @staticmethod
    def _sample(face: Face, flip: bool,
                jitter: Jitter | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        lr, hr, points = face.lr, face.hr, face.landmarks
        if flip:
            lr, hr, points = lr[:, ::-1], hr[:, ::-1], flip_landmarks(points, hr.shape[1])
        if jitter is not None:
            scale = hr.shape[0] // lr.shape[0]
            pixels, points = jitter.pixels(hr), jitter.points(points, hr.shape)
            hr = pixels.astype(np.float32) / 255.0
            lr = bicubic_lr(pixels, scale).astype(np.float32) / 255.0
        heatmaps = render_heatmaps(points, hr.shape[0] // HEATMAP_STRIDE, HEATMAP_STRIDE,
                                   HEATMAP_SIGMA)
        return lr.transpose(2, 0, 1), hr.transpose(2, 0, 1), heatmaps

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
