"""Crops of degraded test images (docs/unsupervised.md, docs/photo.md): the same window of
each image, degraded exactly as `superres eval --degradation` makes its LR (by default BSD100
under the unpaired experiment's chain), upscaled by each method, beside HR.

    python benchmarks/degraded_crops.py -o docs/unsupervised_crops.png \
        --method bicubic --method fsrcnn \
        --method two-step=srvgg-s:checkpoints/unpaired_twostep_x4_l2h/latest.safetensors

A method is a model name, or LABEL=MODEL:WEIGHTS for weights a run made.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import superres
from superres.data import dataset_images
from superres.image.degrade import modcrop, parse_degradation
from superres.image.io import read_image
from superres.inference.upscaler import Upscaler
from superres.report import detailed_window, tile_sheet

CHAIN = "blur-downsample+noise:sigma=10+jpeg:quality=60"
IMAGES = ("108005", "148026", "253027")  # BSD100 images with texture and edges


def titled_upscaler(text: str, scale: int) -> tuple[str, Upscaler]:
    """`MODEL` or `LABEL=MODEL:WEIGHTS` as a titled upscaler."""
    label, _, rest = text.partition("=")
    model, _, weights = (rest or label).partition(":")
    return label, superres.load(model, scale, weights=weights or None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--method", action="append", required=True)
    parser.add_argument("--image", action="append",
                        help=f"image names (default: {', '.join(IMAGES)})")
    parser.add_argument("--dataset", default="BSD100")
    parser.add_argument("--degradation", default=CHAIN,
                        help="how LR is made, as `superres eval --degradation` (default: the "
                        "unpaired experiment's chain)")
    parser.add_argument("--crop", type=int, default=96)
    args = parser.parse_args()
    scale = 4
    methods = dict(titled_upscaler(text, scale) for text in args.method)
    _, paths = dataset_images(args.dataset)
    chosen = [p for p in paths if p.stem in (args.image or IMAGES)]
    degradation = parse_degradation(args.degradation)
    tiles = []
    for path in chosen:
        hr = modcrop(read_image(path).pixels, scale)
        lr = degradation.of_image(hr, scale, path.name)
        top, left = detailed_window(hr, args.crop)
        window = (slice(top, top + args.crop), slice(left, left + args.crop))
        tiles.append([u.upscale(lr)[window] for u in methods.values()] + [hr[window]])
    sheet = tile_sheet([*methods, "HR"], tiles, crop=args.crop)
    sheet.save(args.output)
    print(f"wrote {args.output}: {len(chosen)} images x {len(methods) + 1} columns")


if __name__ == "__main__":
    main()
