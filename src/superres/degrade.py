"""LR synthesis: how low-resolution inputs are made from HR images.

The classic "BI" degradation of the SR literature is MATLAB `imresize(hr, 1/s, 'bicubic')`
on the uint8 HR image, modcropped so that its size is a multiple of `s`, rounded back to
uint8. Training and evaluation both use these functions so the two never disagree.
"""

from __future__ import annotations

import numpy as np

from superres.resize import imresize


def modcrop(image: np.ndarray, scale: int) -> np.ndarray:
    """Crop H x W (x C) at the top-left origin to a multiple of `scale`, as MATLAB `modcrop`."""
    height, width = image.shape[:2]
    return image[: height - height % scale, : width - width % scale]


def to_uint(image: np.ndarray, dtype: np.dtype | type = np.uint8) -> np.ndarray:
    """Round and clip a float image in integer units to `dtype`, as MATLAB casts its results."""
    info = np.iinfo(dtype)
    return np.clip(np.round(image), info.min, info.max).astype(dtype)


def bicubic_lr(hr: np.ndarray, scale: int) -> np.ndarray:
    """The standard BI low-resolution image of an integer HR image (modcropped first)."""
    if not np.issubdtype(hr.dtype, np.integer):
        raise TypeError(f"expected an integer (uint8/uint16) HR image, got {hr.dtype}")
    hr = modcrop(hr, scale)
    if min(hr.shape[:2]) < scale:
        raise ValueError(f"image of size {hr.shape[:2]} is too small for scale {scale}")
    return to_uint(imresize(hr, 1 / scale), hr.dtype)
