"""Crops of the unpaired-SR experiment (docs/unsupervised.md): the same window of BSD100
images, degraded by the experiment's chain exactly as `superres eval --degradation` makes
their LR, upscaled by each method, beside HR.

    python benchmarks/unsupervised_crops.py -o docs/unsupervised_crops.png \
        --method bicubic --method fsrcnn \
        --method two-step=srvgg-s:checkpoints/unpaired_twostep_x4_l2h/latest.safetensors

A method is a model name, or LABEL=MODEL:WEIGHTS for weights a run made.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

import superres
from superres.data import dataset_images
from superres.image.degrade import image_seed, modcrop, parse_degradation
from superres.image.io import read_image
from superres.inference.upscaler import Upscaler
from superres.report import detailed_window

CHAIN = "blur-downsample+noise:sigma=10+jpeg:quality=60"
IMAGES = ("108005", "148026", "253027")  # BSD100 images with texture and edges


def _method(text: str, scale: int) -> tuple[str, Upscaler]:
    """`MODEL` or `LABEL=MODEL:WEIGHTS` as a titled upscaler."""
    label, _, rest = text.partition("=")
    model, _, weights = (rest or label).partition(":")
    return label, superres.load(model, scale, weights=weights or None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--method", action="append", required=True)
    parser.add_argument("--image", action="append", default=list(IMAGES))
    parser.add_argument("--crop", type=int, default=96)
    args = parser.parse_args()
    scale, zoom, label = 4, 2, 20
    methods = dict(_method(text, scale) for text in args.method)
    _, paths = dataset_images("BSD100")
    chosen = [p for p in paths if p.stem in args.image]
    degradation = parse_degradation(CHAIN)
    side = args.crop * zoom
    titles = [*methods, "HR"]
    sheet = Image.new("RGB", (side * len(titles), label + side * len(chosen)), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=14)
    for column, title in enumerate(titles):
        draw.text((column * side + side / 2, label / 2), title, fill="black", font=font,
                  anchor="mm")
    for row, path in enumerate(chosen):
        hr = modcrop(read_image(path).pixels, scale)
        lr = degradation(hr, scale, np.random.default_rng(image_seed(path.name)))
        top, left = detailed_window(hr, args.crop)
        window = (slice(top, top + args.crop), slice(left, left + args.crop))
        for column, upscaler in enumerate([*methods.values(), None]):
            image = hr if upscaler is None else upscaler.upscale(lr)
            tile = Image.fromarray(np.squeeze(image[window])).convert("RGB")
            sheet.paste(tile.resize((side, side), Image.NEAREST),
                        (column * side, label + row * side))
    sheet.save(args.output)
    print(f"wrote {args.output}: {len(chosen)} images x {len(titles)} columns")


if __name__ == "__main__":
    main()
