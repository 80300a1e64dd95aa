"""Side-by-side crops for the figures in docs/: the same HR window from each method's output."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from superres.data import dataset_images
from superres.image.degrade import bicubic_lr, modcrop
from superres.image.io import read_image
from superres.inference.upscaler import Upscaler

LABEL = 22  # height of the title row, pixels


def crop_sheet(upscalers: dict[str, Upscaler], dataset: str, scale: int,
               crops: dict[str, tuple[int, int]], path: Path, *, crop: int = 96,
               zoom: int = 2) -> None:
    """One row per image of `crops` (image name -> top, left of a `crop` x `crop` HR window):
    each method's crop from the bicubic-downscaled image, then HR's, enlarged `zoom` x
    (nearest, so that no resampling hides what the method did)."""
    _, paths = dataset_images(dataset)
    by_name = {p.stem: p for p in paths}
    rows = [name for name in crops if name in by_name]
    if not rows:
        raise ValueError(f"{dataset} holds none of the figure's images ({', '.join(crops)})")
    side, titles = crop * zoom, [*upscalers, "HR"]
    sheet = Image.new("RGB", (side * len(titles), LABEL + side * len(rows)), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=14)
    for column, title in enumerate(titles):
        draw.text((column * side + side / 2, LABEL / 2), title, fill="black", font=font,
                  anchor="mm")
    for row, name in enumerate(rows):
        hr = modcrop(read_image(by_name[name]).pixels, scale)
        lr = bicubic_lr(hr, scale)
        top, left = crops[name]
        for column, upscaler in enumerate([*upscalers.values(), None]):
            image = hr if upscaler is None else upscaler.upscale(lr)
            window = Image.fromarray(np.squeeze(image[top : top + crop, left : left + crop]))
            sheet.paste(window.convert("RGB").resize((side, side), Image.NEAREST),
                        (column * side, LABEL + row * side))
    sheet.save(path, optimize=True)
