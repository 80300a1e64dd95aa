"""Draw the error maps of docs/depth.md: one Middlebury 2005 scene upsampled x8 by each method.

    python docs/depth_figure.py [--scene Art] [--scale 8]

Each panel is |SR - ground truth| on the 0-255 disparity scale (the same colour range for
all), with its RMSE; learned-jbu runs with the fold that never saw the scene.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from superres.data.depth import depth_scenes
from superres.depth import depth_method
from superres.metrics.depth import rmse_255

ROOT = Path(__file__).resolve().parent.parent
METHODS = ("bicubic", "jbu", "guided-filter", "learned-jbu")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scene", default="Art")
    parser.add_argument("--scale", type=int, default=8)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "depth_errors.png")
    args = parser.parse_args()
    _, scenes = depth_scenes("Middlebury2005", (args.scale,))
    scene = next(s for s in scenes if s.name == args.scene)
    fig, axes = plt.subplots(2, 3, figsize=(13, 6.6), layout="constrained")
    axes[0, 0].imshow(scene.guide)
    axes[0, 0].set_title(f"{scene.name}: RGB guide")
    axes[0, 1].imshow(scene.depth * 255, cmap="viridis", vmin=0, vmax=255)
    axes[0, 1].set_title("ground-truth disparity")
    panels = [axes[0, 2], axes[1, 0], axes[1, 1], axes[1, 2]]
    for ax, name in zip(panels, METHODS, strict=True):
        sr = depth_method(name, args.scale, scene=scene.name)(scene.lr(args.scale),
                                                              scene.guide, args.scale)
        error = np.abs(np.round(np.clip(sr, 0, 1) * 255) - np.round(scene.depth * 255))
        shown = ax.imshow(error, cmap="inferno", vmin=0, vmax=40)
        ax.set_title(f"{name} x{args.scale}: |error|, RMSE {rmse_255(sr, scene.depth):.2f}")
    for ax in axes.flat:
        ax.axis("off")
    fig.colorbar(shown, ax=axes, shrink=0.6, label="absolute error (disparity levels)")
    fig.savefig(args.out, dpi=80, bbox_inches="tight")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
