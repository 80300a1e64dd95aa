"""Depth maps with their colour guide: reading depth sets, the released LR, leave-one-out folds.

A depth set is a folder of scenes, each a ground-truth depth (or disparity) map and an RGB
guide of the same size, matched by file name. Two layouts are read:

- the Middlebury 2005 release of PMBANet (registered as `Middlebury2005`): `test_gt/N.png`
  (8-bit disparity), `test_color/N.png` (guide) and the released LR maps `testxS/N.png`;
- a user's folder: `depth/NAME.png` (8- or 16-bit gray) and `guide/NAME.png` (RGB or gray).
  Its LR maps are made by `downsample_depth`, the way the Middlebury release made its own.

With six scenes there is no separate test set: learned models are trained and scored by
leave-one-scene-out (`leave_one_out`), as the depth SR papers that train on these scenes do.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from superres.data.registry import DatasetNotFoundError, find_dataset_folder, get_dataset
from superres.files import list_images
from superres.image.io import read_image

# The six Middlebury 2005 scenes of the release, by file stem (identified by eye).
MIDDLEBURY_SCENES = {"1": "Art", "2": "Books", "3": "Dolls", "4": "Laundry", "5": "Moebius",
                     "6": "Reindeer"}
DEPTH_SETS = ("Middlebury2005",)


@dataclass(frozen=True, eq=False)
class DepthScene:
    """One scene: HR depth and guide (float32 in [0, 1], H x W and H x W x 3), and the LR
    depth maps shipped with the set, by scale (absent ones are made by `downsample_depth`)."""

    name: str
    depth: np.ndarray
    guide: np.ndarray
    released_lr: dict[int, np.ndarray]
    bit_depth: int = 8

    def lr(self, scale: int) -> np.ndarray:
        """The LR depth at `scale`: the released map, else made as the release made it."""
        if scale in self.released_lr:
            return self.released_lr[scale]
        return downsample_depth(self.depth, scale, self.bit_depth)


def downsample_depth(depth: np.ndarray, scale: int, bit_depth: int = 8) -> np.ndarray:
    """The Middlebury release's LR: bicubic interpolation (a = -0.75) at the LR pixel centres
    with no anti-aliasing, edges repeated, rounded to the bit depth. Measured against the
    released maps: identical at x2, x4 and x8, 9 of 33,728 pixels off by one level at x16
    (docs/depth.md). Takes and returns floats in [0, 1]; the size must divide by `scale`."""
    height, width = depth.shape
    if height % scale or width % scale:
        raise ValueError(f"a {width}x{height} depth map does not divide by {scale}; crop it "
                         f"to a multiple of {scale}")
    levels = 2**bit_depth - 1
    # back to the integer levels first: float32 fractions of them would round differently
    hr = torch.from_numpy(np.round(np.asarray(depth, dtype=np.float64) * levels))[None, None]
    lr = F.interpolate(hr, scale_factor=1 / scale, mode="bicubic", align_corners=False)
    return (lr[0, 0].round().clamp(0, levels) / levels).numpy().astype(np.float32)


def is_depth_set(name_or_folder: str | os.PathLike[str]) -> bool:
    """Whether `name_or_folder` names a registered depth set or a depth + guide folder."""
    text = os.fspath(name_or_folder)
    try:
        return get_dataset(text).name in DEPTH_SETS
    except KeyError:
        folder = Path(text).expanduser()
        return (folder / "depth").is_dir() and (folder / "guide").is_dir()


def depth_scenes(name_or_folder: str | os.PathLike[str],
                 scales: Sequence[int] = ()) -> tuple[str, list[DepthScene]]:
    """The scenes of a registered depth set or of a `depth/` + `guide/` folder, with the
    released LR maps at `scales` (when the set ships them); the set's name comes first."""
    text = os.fspath(name_or_folder)
    try:
        spec = get_dataset(text)
    except KeyError:
        folder = Path(text).expanduser()
        if not is_depth_set(folder):
            raise DatasetNotFoundError(
                f"{text!r} is neither a registered depth set ({', '.join(DEPTH_SETS)}) nor a "
                "folder holding depth/ and guide/ sub-folders of same-named images") from None
        return folder.resolve().name, _read_pairs(folder / "depth", folder / "guide", {})
    if spec.name not in DEPTH_SETS:
        raise ValueError(f"{spec.name} is not a depth set; depth sets: {', '.join(DEPTH_SETS)}")
    _, gt_folder = find_dataset_folder(spec.name)
    root = gt_folder.parent
    lr_folders = {s: root / f"testx{s}" for s in scales if (root / f"testx{s}").is_dir()}
    return spec.name, _read_pairs(gt_folder, root / "test_color", lr_folders,
                                  names=MIDDLEBURY_SCENES)


def _read_pairs(depth_folder: Path, guide_folder: Path, lr_folders: dict[int, Path],
                names: dict[str, str] | None = None) -> list[DepthScene]:
    depths = list_images(depth_folder)
    if not depths:
        raise DatasetNotFoundError(f"no depth maps in {depth_folder}")
    guides = {p.stem: p for p in list_images(guide_folder)}
    scenes = []
    for path in depths:
        if path.stem not in guides:
            raise DatasetNotFoundError(f"{path}: no guide image {path.stem}.* in {guide_folder}")
        depth, bit_depth = read_depth(path)
        guide = read_guide(guides[path.stem], depth.shape)
        released = {s: read_depth(folder / path.name)[0] for s, folder in lr_folders.items()}
        scenes.append(DepthScene((names or {}).get(path.stem, path.stem), depth, guide,
                                 released, bit_depth))
    return scenes


def read_depth(path: str | os.PathLike[str]) -> tuple[np.ndarray, int]:
    """A one-channel depth map as float32 in [0, 1] (H x W) and its bit depth (8 or 16)."""
    picture = read_image(path)
    if picture.channels != 1:
        raise ValueError(f"{path}: a depth map has one channel, this image has "
                         f"{picture.channels}")
    levels = 2**picture.bit_depth - 1
    return picture.pixels[..., 0].astype(np.float32) / levels, picture.bit_depth


def read_guide(path: str | os.PathLike[str], size: tuple[int, int] | None = None) -> np.ndarray:
    """An RGB guide as float32 in [0, 1] (H x W x 3; a gray guide is repeated), checked to
    be `size` (H, W) when given."""
    picture = read_image(path)
    if size is not None and picture.pixels.shape[:2] != tuple(size):
        raise ValueError(f"{path}: the guide is {picture.width}x{picture.height}, but its depth "
                         f"map needs {size[1]}x{size[0]}")
    pixels = picture.pixels.astype(np.float32) / (2**picture.bit_depth - 1)
    return np.repeat(pixels, 3, axis=2) if picture.channels == 1 else pixels


def leave_one_out(names: Sequence[str]) -> list[tuple[str, list[str]]]:
    """One fold per scene: (the held-out scene, the scenes trained on), in `names` order."""
    if len(set(names)) != len(names) or len(names) < 2:
        raise ValueError(f"leave-one-out needs two or more distinct scenes, not {list(names)}")
    return [(held_out, [n for n in names if n != held_out]) for held_out in names]
