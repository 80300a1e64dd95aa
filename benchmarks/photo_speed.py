"""Speed of the photo model x4 on a CPU, beside FSRCNN x4 and OpenCV's bicubic, in one run.

    python benchmarks/photo_speed.py [--size 512] [--threads 2] [--rounds 5] [--weights W]

Upscales one size x size RGB image x4 through the user path (`superres.load(...).upscale`,
uint8 in and out, tiles as `superres upscale` runs them) and prints output megapixels per
second and each path's speed as a ratio of OpenCV's `cv2.resize(INTER_CUBIC)`, all timed in
interleaved rounds (best of `rounds`), so that the ratios compare like with like even on a
busy machine. The load average is printed before and after.

The photo model's speed does not depend on its weight values: without shipped weights (or
`--weights`) it runs freshly initialised ones, and says so. OpenCV is not a superres
dependency: `pip install opencv-python-headless` (its row is skipped, saying so, without it).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from timing import best_times

import superres
from superres.weights import find_weights, save_weights


def photo_upscaler(weights: str | None, folder: Path) -> tuple[superres.Upscaler, str]:
    """The photo model x4 with `weights`, its shipped ones, or fresh ones (speed is the same)."""
    if weights:
        return superres.load("photo", 4, weights=weights), f"weights {Path(weights).name}"
    if find_weights("photo", 4):
        return superres.load("photo", 4), "shipped weights"
    fresh = folder / "photo_x4_fresh.safetensors"
    save_weights(superres.build("photo", 4), fresh)
    return superres.load("photo", 4, weights=fresh), "freshly initialised weights"


def opencv_bicubic(scale: int) -> Callable[[np.ndarray], np.ndarray] | None:
    try:
        import cv2
    except ImportError:
        return None
    cv2.setNumThreads(torch.get_num_threads())
    return lambda im: cv2.resize(im, (im.shape[1] * scale, im.shape[0] * scale),
                                 interpolation=cv2.INTER_CUBIC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--weights", help="photo x4 weights (default: shipped, else fresh)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    scale = 4
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (args.size, args.size, 3), dtype=np.uint8)
    out_mp = (args.size * scale) ** 2 / 1e6

    with tempfile.TemporaryDirectory() as tmp:
        photo, origin = photo_upscaler(args.weights, Path(tmp))
        fsrcnn = superres.load("fsrcnn", scale)
        runs: dict[str, Callable[[], object]] = {
            "photo x4": lambda: photo.upscale(image),
            "fsrcnn x4": lambda: fsrcnn.upscale(image),
        }
        bicubic = opencv_bicubic(scale)
        if bicubic is None:
            print("OpenCV is not installed (pip install opencv-python-headless): no baseline row")
        else:
            runs["opencv bicubic x4"] = lambda: bicubic(image)
        print(f"{args.size}x{args.size} RGB -> x{scale}, {args.threads} threads, photo with "
              f"{origin}; load average before: {os.getloadavg()[0]:.2f}")
        best = best_times(runs, args.rounds, time.perf_counter)
    print(f"load average after: {os.getloadavg()[0]:.2f}\n")
    base = best.get("opencv bicubic x4")
    print(f"{'path':<20} {'ms':>9} {'output MP/s':>12} {'x OpenCV bicubic':>17}")
    for name, seconds in best.items():
        ratio = f"{base / seconds:.3f}" if base else "-"
        print(f"{name:<20} {seconds * 1e3:>9.1f} {out_mp / seconds:>12.2f} {ratio:>17}")


if __name__ == "__main__":
    main()
