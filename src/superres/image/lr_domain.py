"""A folder of LR images made once by a degradation: an "unknown" LR domain for unpaired SR.

Unpaired training sees LR photos whose degradation it is not told. To experiment without
real ones, `degrade_folder` degrades a folder of images once and saves the LR as PNG; the
folder then serves as the LR side of an `superres.train.unpaired.UnpairedSampler`. Each
image's generator is seeded from its file name, as evaluation's is, so a rerun (or another
machine) writes the same pixels, and with no `seed` the LR is exactly evaluation's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from superres.files import list_images
from superres.image.degrade import DegradationSpec, image_seed, parse_degradation
from superres.image.io import ImageReadError, Picture, read_image, write_image


@dataclass
class DegradedFolder:
    """What `degrade_folder` did: the LR files written, and a one-line message per image
    that failed (the others are still written)."""

    written: list[Path] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def degrade_folder(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    scale: int,
    degradation: DegradationSpec = "bicubic",
    *,
    seed: int | None = None,
    progress: bool = True,
) -> DegradedFolder:
    """Degrade every image of `source` by `scale` and write its LR to `out/<stem>.png`,
    atomically. Image `name` draws from `default_rng(image_seed(name))`, or with `seed` from
    `default_rng([seed, image_seed(name)])`. Bad arguments are a ValueError (checked before
    any work); an image that cannot be read or degraded is reported in `failed`."""
    parsed = parse_degradation(degradation)
    source, out = Path(source), Path(out)
    if scale < 2:
        raise ValueError(f"scale {scale}: downscaling needs a scale of at least 2")
    if not source.is_dir():
        raise ValueError(f"{source} is not a folder of images")
    if out.exists() and not out.is_dir():
        raise ValueError(f"-o {out} is a file; name a folder for the LR images")
    if out.resolve() == source.resolve():
        raise ValueError(f"{out} is the input folder; write the LR images elsewhere")
    paths = list_images(source)
    if not paths:
        raise ValueError(f"no images in {source}")
    stems = [path.stem for path in paths]
    clashes = sorted({stem for stem in stems if stems.count(stem) > 1})
    if clashes:
        raise ValueError(f"images {', '.join(clashes)} of {source} would write the same "
                         "PNG: they differ only by suffix")
    result = DegradedFolder()
    for path in tqdm(paths, desc=f"degrading x{scale}", unit="img", disable=not progress,
                     leave=False):
        rng = np.random.default_rng(image_seed(path.name) if seed is None
                                    else [seed, image_seed(path.name)])
        try:
            pixels = read_image(path).pixels
            if pixels.dtype != np.uint8:  # 16-bit gray: degradations work on 8-bit pixels
                pixels = np.round(pixels / 257).astype(np.uint8)
            lr = parsed(pixels, scale, rng)
        except ImageReadError as err:
            result.failed.append(str(err))
            continue
        except ValueError as err:  # e.g. smaller than the scale
            result.failed.append(f"{path}: {err}")
            continue
        result.written.append(write_image(out / f"{path.stem}.png", Picture(lr, None)))
    return result
