"""Real low-quality photos (RealSRSet: no ground truth): each method's NIQE (lower looks more
natural, the standard pristine model) over the set, and a crop sheet of the same windows.

    python benchmarks/realsrset.py -o docs/photo_realsrset.png --method bicubic \
        --method fsrcnn --method photo=photo:checkpoints/photo_x4/best.safetensors

A method is a model name, or LABEL=MODEL:WEIGHTS (as in degraded_crops.py). Every image
is upscaled x4 as RGB (greyscale and alpha inputs converted); NIQE is scored on Y of the
whole output. The sheet shows, per row, the window where the bicubic output has the most
detail, and the input enlarged by nearest neighbour.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
from degraded_crops import titled_upscaler
from PIL import Image
from tqdm import tqdm

from superres.metrics.niqe import load_niqe_model, niqe
from superres.report import detailed_window, tile_sheet

ROWS = ("oldphoto2", "dped_crop00061", "0030", "Lincoln")  # photos, not drawings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--method", action="append", required=True)
    parser.add_argument("--crop", type=int, default=96)
    parser.add_argument("--row", action="append", default=list(ROWS))
    args = parser.parse_args()
    scale = 4
    folder = Path(os.environ.get("SUPERRES_DATA", "datasets")) / "RealSRSet"
    paths = sorted(folder.glob("*.png"))
    if not paths:
        raise SystemExit(f"no RealSRSet images in {folder}: set SUPERRES_DATA")
    methods = dict(titled_upscaler(text, scale) for text in args.method)
    model = load_niqe_model()
    scores: dict[str, list[float]] = {label: [] for label in methods}
    tiles = []
    for path in tqdm(paths, desc="RealSRSet", unit="image"):
        with Image.open(path) as image:
            lr = np.asarray(image.convert("RGB"))
        outputs = {label: u.upscale(lr) for label, u in methods.items()}
        for label, sr in outputs.items():
            scores[label].append(niqe(sr, model))
        if path.stem in args.row:
            top, left = detailed_window(next(iter(outputs.values())), args.crop)
            window = (slice(top, top + args.crop), slice(left, left + args.crop))
            near = np.kron(lr, np.ones((scale, scale, 1), dtype=lr.dtype))
            tiles.append([near[window], *(sr[window] for sr in outputs.values())])
    print(f"| method | NIQE, mean over {len(paths)} images (lower looks more natural) |")
    print("|---|---|")
    for label, values in scores.items():
        print(f"| {label} | {np.mean(values):.3f} |")
    tile_sheet(["input (nearest)", *methods], tiles, crop=args.crop).save(args.output)
    print(f"wrote {args.output}: {len(tiles)} images x {len(methods) + 1} columns")


if __name__ == "__main__":
    main()
