"""How were Middlebury2005's released LR depth maps made? Compare them with candidates.

    python benchmarks/depth_lr_method.py

For each scale, every candidate downscaling of `test_gt` is compared with the released
`testxS` maps over the six scenes; prints a Markdown table of the share of identical pixels
and the RMSE (disparity levels), the table in docs/depth.md.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch.nn import functional as F

from superres.data.depth import depth_scenes, downsample_depth
from superres.image.resize import imresize

SCALES = (2, 4, 8, 16)


def _levels(depth: np.ndarray) -> np.ndarray:
    return np.round(depth.astype(np.float64) * 255)


def _box(hr: np.ndarray, scale: int) -> np.ndarray:
    h, w = hr.shape
    return np.round(hr.reshape(h // scale, scale, w // scale, scale).mean(axis=(1, 3)))


def _decimate(phase: int) -> Callable[[np.ndarray, int], np.ndarray]:
    return lambda hr, scale: hr[phase % scale::scale, phase % scale::scale]


def _bilinear(hr: np.ndarray, scale: int) -> np.ndarray:
    out = F.interpolate(torch.from_numpy(hr)[None, None], scale_factor=1 / scale,
                        mode="bilinear", align_corners=False)
    return np.round(out[0, 0].numpy())


CANDIDATES: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    "bicubic at the LR centres, no anti-aliasing (`downsample_depth`)":
        lambda hr, scale: _levels(downsample_depth(hr / 255, scale)),
    "MATLAB imresize bicubic (anti-aliased)":
        lambda hr, scale: np.clip(np.round(imresize(hr, 1 / scale)), 0, 255),
    "bilinear at the LR centres, no anti-aliasing": _bilinear,
    "box average": _box,
    **{f"decimation, phase {p}": _decimate(p) for p in (0, 1, 3, 7)},
}


def main() -> None:
    _, scenes = depth_scenes("Middlebury2005", SCALES)
    print("| candidate | " + " | ".join(f"x{s} identical / RMSE" for s in SCALES) + " |")
    print("|---|" + "---|" * len(SCALES))
    for name, downscale in CANDIDATES.items():
        cells = []
        for scale in SCALES:
            same, errors = [], []
            for scene in scenes:
                released = _levels(scene.lr(scale))
                made = downscale(_levels(scene.depth), scale)
                made = made[:released.shape[0], :released.shape[1]]
                same.append(np.mean(made == released))
                errors.append(np.sqrt(np.mean((made - released) ** 2)))
            cells.append(f"{100 * np.mean(same):.2f}% / {np.mean(errors):.3f}")
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
