"""Facial landmarks of the aligned training faces: reading them, mirroring them with an image,
and rendering them as the Gaussian heatmaps a face SR network's prior branch learns to predict.

The 68 points follow the 300-W (iBUG) mark-up in crop coordinates with 0-based pixel centres:
jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, mouth 48-67. Mirroring an image swaps left and
right, so a flipped face's point i is the original's `FLIP_PERMUTATION[i]`, mirrored.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from superres.data.registry import data_root, dataset_images

POINTS = 68
# Pairs of 300-W points that trade places when a face is mirrored; the others (the nose's
# bridge 27-30 and tip 33, the mouth's centre line 51, 57, 62, 66) map to themselves.
_MIRROR_PAIRS = (
    *((i, 16 - i) for i in range(8)),  # jaw
    *((17 + i, 26 - i) for i in range(5)),  # brows
    (31, 35), (32, 34),  # nostrils
    (36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46),  # eyes
    (48, 54), (49, 53), (50, 52), (55, 59), (56, 58),  # outer lip
    (60, 64), (61, 63), (65, 67),  # inner lip
)


def _flip_permutation() -> np.ndarray:
    order = np.arange(POINTS)
    for a, b in _MIRROR_PAIRS:
        order[a], order[b] = b, a
    return order


FLIP_PERMUTATION = _flip_permutation()
# The landmark files of the training sets that have them, relative to the data folder.
LANDMARK_FILES = {"FaceTrain": "Faces/train_landmarks.csv"}


def flip_landmarks(points: np.ndarray, width: int) -> np.ndarray:
    """The landmarks (68 x 2, x then y) of the image mirrored left-right, `width` pixels wide:
    x becomes width - 1 - x (pixel centres), and left and right points trade places."""
    mirrored = points[FLIP_PERMUTATION].copy()
    mirrored[:, 0] = width - 1 - mirrored[:, 0]
    return mirrored


def render_heatmaps(points: np.ndarray, size: int, stride: int = 1,
                    sigma: float = 1.0) -> np.ndarray:
    """One Gaussian map per landmark (N x size x size, float32, peak 1 at the point), on a grid
    `stride` times coarser than the image the points are given in (FSRNet predicts them at
    half the HR size). The Gaussian is centred at the exact, sub-pixel position: pixel centre
    k of the coarse grid lies at image coordinate stride * (k + 0.5) - 0.5."""
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"landmarks must be N x 2 (x, y), not {tuple(points.shape)}")
    centres = (points.astype(np.float64) + 0.5) / stride - 0.5
    grid = np.arange(size, dtype=np.float64)
    across = np.exp(-((grid[None, :] - centres[:, :1]) ** 2) / (2 * sigma**2))
    down = np.exp(-((grid[None, :] - centres[:, 1:]) ** 2) / (2 * sigma**2))
    return (down[:, :, None] * across[:, None, :]).astype(np.float32)


def dataset_landmarks(name: str) -> dict[Path, np.ndarray]:
    """Each image of training set `name` and its 68 x 2 landmarks (x, y), read from the
    set's landmark file in the data folder; a set without one, or an image missing from the
    file, is a one-line error."""
    if name not in LANDMARK_FILES:
        raise ValueError(f"{name} has no landmarks; sets with landmarks: "
                         f"{', '.join(LANDMARK_FILES)}")
    path = data_root() / LANDMARK_FILES[name]
    if not path.is_file():
        raise FileNotFoundError(f"{name}'s landmarks {LANDMARK_FILES[name]} are not in the "
                                "data folder: copy them beside the images")
    with open(path, newline="", encoding="utf-8") as handle:
        rows = {row["file"]: row for row in csv.DictReader(handle)}
    images = dataset_images(name)[1]
    missing = [image.name for image in images if image.name not in rows]
    if missing:
        raise ValueError(f"{path.name} has no landmarks for {len(missing)} image(s) of {name}, "
                         f"e.g. {missing[0]}")
    return {image: np.array([[float(rows[image.name][f"{axis}{i}"]) for axis in "xy"]
                             for i in range(1, POINTS + 1)]) for image in images}
