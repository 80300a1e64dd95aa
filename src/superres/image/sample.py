"""A built-in sample image, drawn in code so it needs no file and carries no licence.

It is a small test chart with what SR is judged on: fine lines at several angles, a
zone plate (every frequency and orientation), text, colour edges and smooth gradients.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw


def sample_image(width: int = 192, height: int = 128) -> Image.Image:
    """The test chart as an RGB PIL image (deterministic for a given Pillow version)."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    # Smooth colour gradient background.
    rgb = np.stack([xx / width, yy / height, 1 - xx / width * 0.6], axis=-1) * 200 + 30
    # Zone plate in the right third: cos(k r^2) sweeps all spatial frequencies.
    cx, cy, radius = width * 0.8, height * 0.5, min(height, width) * 0.35
    r2 = (xx - cx) ** 2 + (yy - cy) ** 2
    zone = 127.5 + 127.5 * np.cos(np.pi * r2 / (2.2 * radius))
    inside = r2 < radius**2
    rgb[inside] = zone[inside, None]
    image = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    # Converging lines: resolution wedge.
    for i in range(12):
        draw.line([(6, 6 + i * 4), (70, 6 + i * 2)], fill=(20, 20, 20), width=1)
    # Colour bars with hard edges.
    for i, colour in enumerate([(230, 40, 40), (40, 200, 60), (40, 70, 230), (250, 220, 40)]):
        draw.rectangle([6 + i * 16, 64, 20 + i * 16, 84], fill=colour)
    draw.text((6, 92), "superres", fill=(255, 255, 255))
    draw.text((6, 106), "SR 2x 3x 4x", fill=(0, 0, 0))
    return image
