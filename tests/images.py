"""Small synthetic images that tests write to disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def write_smooth_images(folder: Path, count: int, coarse: tuple[int, int],
                        size: tuple[int, int]) -> Path:
    """`count` smooth random RGB PNGs (random `coarse` (h, w) pixels enlarged by bicubic to
    `size` (w, h)): learnable structure standing in for photos or a training set."""
    rng = np.random.default_rng(0)
    for i in range(count):
        pixels = rng.integers(0, 256, (*coarse, 3), dtype=np.uint8)
        Image.fromarray(pixels).resize(size, Image.BICUBIC).save(folder / f"{i}.png")
    return folder
