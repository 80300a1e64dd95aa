"""Training clips for video models without a video corpus: short clips synthesised from still
HR images by a smooth random camera motion, then degraded frame by frame.

Each clip follows one trajectory. Frame k (k = -r..r around the centre frame 0) shows the
image moved by d(k) = v k + a k^2 / 2 pixels (content at p in frame 0 is at p + d(k) in frame
k, before rotation and zoom), turned by k * rotation degrees and magnified by
(1 + zoom)^k about the patch centre. The centre frame is the image's own pixels; the others
are resampled with bicubic interpolation and rounded to 8 bits, as decoded frames are. Each
HR frame is then degraded by the recipe's degradation (MATLAB bicubic x4 by default, the
evaluation's own LR), from a window wide enough that the patch's LR is the whole frame's.

The papers train on real video (Vimeo-90K, CDVL); docs/video.md says what this costs.
All random choices come from one seeded generator whose state a checkpoint keeps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from superres.data.registry import dataset_images
from superres.image.color import rgb_to_y
from superres.image.degrade import DegradationSpec, parse_degradation
from superres.image.io import read_image

# LR pixels degraded beyond each edge of a patch: the bicubic kernel's reach at x4 and more.
LR_MARGIN = 4


@dataclass(frozen=True)
class MotionRange:
    """The largest camera motion a clip draws, per frame step: velocity (LR pixels, any
    direction), acceleration (LR pixels per step, any direction), rotation (degrees) and
    zoom (relative change). Each is drawn uniformly up to its bound."""

    velocity: float = 2.0
    acceleration: float = 0.5
    rotation: float = 1.0
    zoom: float = 0.02

    def reach(self, radius: int, size: int, scale: int) -> int:
        """How far from the centre of a size x size HR frame a clip of 2r + 1 frames can
        sample the image, at most (for the largest motion in any direction)."""
        corner = size / 2 * math.sqrt(2) * (1 + self.zoom) ** radius
        shift = (self.velocity * radius + self.acceleration * radius**2 / 2) * scale
        return math.ceil(corner + shift) + 2


@dataclass(frozen=True)
class Trajectory:
    """One clip's motion, in HR pixels: see the module's docstring."""

    velocity: tuple[float, float] = (0.0, 0.0)  # (dx, dy) per frame
    acceleration: tuple[float, float] = (0.0, 0.0)
    rotation: float = 0.0  # degrees per frame
    zoom: float = 0.0  # magnification (1 + zoom) per frame

    def shift(self, k: int) -> tuple[float, float]:
        """d(k): how far content moves from the centre frame to frame k."""
        (vx, vy), (ax, ay) = self.velocity, self.acceleration
        return vx * k + ax * k * k / 2, vy * k + ay * k * k / 2



def synthesise_clip(image: np.ndarray, centre: tuple[int, int], size: int, radius: int,
                    trajectory: Trajectory) -> np.ndarray:
    """2r + 1 frames (T x size x size x C, uint8) of `image` (H x W x C uint8) seen through a
    camera following `trajectory`; frame r is image[top:top+size, left:left+size] with
    (top, left) = `centre` - size // 2."""
    if size % 2:
        raise ValueError(f"a clip's frame side must be even, not {size}")
    cy, cx = centre
    half = size // 2
    frames = []
    rows = torch.arange(size, dtype=torch.float64) - (half - 0.5)
    qy, qx = torch.meshgrid(rows, rows, indexing="ij")
    source = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).double()[None]
    height, width = image.shape[:2]
    for k in range(-radius, radius + 1):
        if k == 0:
            frames.append(image[cy - half : cy + half, cx - half : cx + half])
            continue
        angle = math.radians(trajectory.rotation * k)
        magnify = (1 + trajectory.zoom) ** k
        dx, dy = trajectory.shift(k)
        cos, sin = math.cos(angle) / magnify, math.sin(angle) / magnify
        # where output pixel q of frame k comes from, relative to the centre (cx - 0.5, ...)
        sx = cos * qx + sin * qy - dx + cx - 0.5
        sy = -sin * qx + cos * qy - dy + cy - 0.5
        grid = torch.stack([(sx + 0.5) * (2 / width) - 1, (sy + 0.5) * (2 / height) - 1], -1)
        frame = F.grid_sample(source, grid[None], mode="bicubic", padding_mode="border",
                              align_corners=False)[0]
        frames.append(frame.round().clamp(0, 255).byte().permute(1, 2, 0).numpy())
    return np.stack(frames)


def load_stills(datasets: Sequence[str], progress: bool = True) -> list[np.ndarray]:
    """The 8-bit RGB pixels of every image of the training sets (gray made RGB)."""
    images = []
    paths = [path for dataset in datasets for path in dataset_images(dataset)[1]]
    for path in tqdm(paths, desc="reading stills", unit="img", disable=not progress,
                     leave=False):
        pixels = read_image(path).pixels
        if pixels.dtype != np.uint8:
            pixels = (pixels // 257).astype(np.uint8)
        pixels = pixels[..., None] if pixels.ndim == 2 else pixels[..., :3]
        images.append(np.repeat(pixels, 3, axis=2) if pixels.shape[2] == 1 else pixels)
    return images


class ClipSampler:
    """Batches of synthetic clips: N x T x p x p LR (Y) inputs, N x 1 x P x P HR (Y) targets
    of the centre frame (P = p * scale). Drawn from a seeded, checkpointable generator."""

    targets: tuple[str, ...] = ()  # no targets beside HR (see `MultiSupervised.targets`)

    def __init__(self, images: Sequence[np.ndarray], scale: int, patch: int, batch: int,
                 frames: int, seed: int, *, augment: bool = True,
                 motion: MotionRange = MotionRange(),
                 degradation: DegradationSpec = "bicubic") -> None:
        if frames < 1 or frames % 2 == 0:
            raise ValueError(f"a clip has an odd number of frames (2r + 1), not {frames}")
        self.scale, self.patch, self.batch, self.augment = scale, patch, batch, augment
        self.radius, self.motion = frames // 2, motion
        self.degradation = parse_degradation(degradation)
        self.side = (patch + 2 * LR_MARGIN) * scale  # the HR frame degraded per clip
        self.reach = motion.reach(self.radius, self.side, scale)
        self.images = [image for image in images if min(image.shape[:2]) > 2 * self.reach]
        if not self.images:
            raise ValueError(f"no training image is larger than {2 * self.reach} px, the "
                             f"room a {patch}-pixel LR clip with this motion needs")
        areas = np.array([(h - 2 * self.reach) * (w - 2 * self.reach)
                          for h, w in (image.shape[:2] for image in self.images)], np.float64)
        self.weights = areas / areas.sum()
        self.rng = np.random.default_rng(seed)

    def trajectory(self) -> Trajectory:
        """A random smooth camera motion within `motion` (in HR pixels)."""
        m, s = self.motion, self.scale

        def planar(bound: float) -> tuple[float, float]:
            length, angle = bound * math.sqrt(self.rng.uniform()), self.rng.uniform(0, 2 * math.pi)
            return length * math.cos(angle), length * math.sin(angle)

        return Trajectory(planar(m.velocity * s), planar(m.acceleration * s),
                          float(self.rng.uniform(-m.rotation, m.rotation)),
                          float(self.rng.uniform(-m.zoom, m.zoom)))

    def clip(self) -> tuple[np.ndarray, np.ndarray]:
        """One sample: (T x p x p x 1 LR Y, P x P x 1 HR Y of the centre frame), float32."""
        image = self.images[self.rng.choice(len(self.images), p=self.weights)]
        height, width = image.shape[:2]
        centre = (int(self.rng.integers(self.reach, height - self.reach + 1)),
                  int(self.rng.integers(self.reach, width - self.reach + 1)))
        trajectory = self.trajectory()
        seed = int(self.rng.integers(2**63))
        flip, turns = (bool(self.rng.integers(2)), int(self.rng.integers(4))) \
            if self.augment else (False, 0)
        frames = synthesise_clip(image, centre, self.side, self.radius, trajectory)
        degrade_rng = np.random.default_rng(seed)
        m, p, s = LR_MARGIN, self.patch, self.scale
        lr = np.stack([self.degradation(frame, s, degrade_rng)[m : m + p, m : m + p]
                       for frame in frames])
        hr = frames[self.radius, m * s : (m + p) * s, m * s : (m + p) * s]
        lr, hr = _luma(lr), _luma(hr)
        if flip:
            lr, hr = lr[:, :, ::-1], hr[:, ::-1]
        return np.rot90(lr, turns, axes=(1, 2)), np.rot90(hr, turns, axes=(0, 1))

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(N x T x p x p LR, N x 1 x P x P HR) float tensors in [0, 1]."""
        clips = [self.clip() for _ in range(self.batch)]
        lr = np.stack([c[0][..., 0] for c in clips])
        hr = np.stack([c[1].transpose(2, 0, 1) for c in clips])
        return torch.from_numpy(np.ascontiguousarray(lr)), torch.from_numpy(
            np.ascontiguousarray(hr))

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]


def _luma(pixels: np.ndarray) -> np.ndarray:
    """uint8 ... x 3 RGB -> float32 ... x 1 BT.601 Y in [0, 1], as evaluation scores it."""
    return rgb_to_y(pixels.astype(np.float32) / 255.0).astype(np.float32)
