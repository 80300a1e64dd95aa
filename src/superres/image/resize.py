"""MATLAB-compatible `imresize` for NumPy arrays and batched torch tensors.

Every classic SR result was measured on LR images made by MATLAB's
`imresize(hr, 1/s, 'bicubic')`: a cubic kernel with a = -0.5, stretched by 1/s when
downscaling (antialiasing), pixel-centre coordinates and mirrored borders. PIL's and
OpenCV's bicubic differ from it and cost 0.5 dB or more against published numbers, so
this module reproduces MATLAB's algorithm step by step (contributions, then one pass per
dimension, the dimension with the smaller scale first).

The torch path uses only indexing, multiplication and addition, so it is differentiable
and runs on any device.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TypeVar

import numpy as np

Array = TypeVar("Array")
_EPS = np.finfo(np.float64).eps  # MATLAB's eps, used by its lanczos kernels


def _cubic(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    ax2, ax3 = ax**2, ax**3
    return (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1) + (
        -0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2
    ) * ((ax > 1) & (ax <= 2))


def _box(x: np.ndarray) -> np.ndarray:
    return ((x >= -0.5) & (x < 0.5)).astype(np.float64)


def _triangle(x: np.ndarray) -> np.ndarray:
    return (x + 1) * ((x >= -1) & (x < 0)) + (1 - x) * ((x >= 0) & (x <= 1))


def _lanczos(lobes: int) -> Callable[[np.ndarray], np.ndarray]:
    def kernel(x: np.ndarray) -> np.ndarray:
        value = (np.sin(np.pi * x) * np.sin(np.pi * x / lobes) + _EPS) / (
            np.pi**2 * x**2 / lobes + _EPS
        )
        return value * (np.abs(x) < lobes)

    return kernel


@dataclass(frozen=True)
class Kernel:
    """A resampling kernel as MATLAB defines it: function, support width, antialiasing."""

    function: Callable[[np.ndarray], np.ndarray]
    width: float
    antialias: bool = True


KERNELS: dict[str, Kernel] = {
    "cubic": Kernel(_cubic, 4.0),
    "bicubic": Kernel(_cubic, 4.0),
    "box": Kernel(_box, 1.0),
    "nearest": Kernel(_box, 1.0, antialias=False),
    "triangle": Kernel(_triangle, 2.0),
    "bilinear": Kernel(_triangle, 2.0),
    "lanczos2": Kernel(_lanczos(2), 4.0),
    "lanczos3": Kernel(_lanczos(3), 6.0),
}


@lru_cache(maxsize=256)
def contributions(
    in_length: int, out_length: int, scale: float, kernel: str
) -> tuple[np.ndarray, np.ndarray]:
    """Input indices (0-based) and weights, each (out_length, taps), as MATLAB computes them.

    Cached because training resizes thousands of patches of the same few sizes.
    """
    spec = KERNELS[kernel]
    width = spec.width
    function = spec.function
    if scale < 1 and spec.antialias:
        width = width / scale

        def function(x: np.ndarray) -> np.ndarray:
            return scale * spec.function(scale * x)

    x = np.arange(1, out_length + 1, dtype=np.float64)[:, None]
    u = x / scale + 0.5 * (1 - 1 / scale)  # output pixel centre in input coordinates
    left = np.floor(u - width / 2)
    taps = math.ceil(width) + 2
    indices = left + np.arange(taps)[None, :]
    weights = function(u - indices)
    weights = weights / weights.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_length), np.arange(in_length)[::-1]])
    indices = mirror[np.mod(indices.astype(np.int64) - 1, 2 * in_length)]
    keep = np.any(weights != 0, axis=0)
    weights, indices = weights[:, keep], indices[:, keep]
    weights.setflags(write=False)
    indices.setflags(write=False)
    return indices, weights


def output_size(in_size: tuple[int, int], scale: float) -> tuple[int, int]:
    """MATLAB's output size for a scale factor: ceil(scale * size), per dimension."""
    return tuple(math.ceil(scale * n - 1e-9) for n in in_size)  # type: ignore[return-value]


def imresize(
    image: Array,
    scale: float | None = None,
    *,
    size: tuple[int, int] | None = None,
    kernel: str = "cubic",
) -> Array:
    """Resize like MATLAB `imresize` (give `scale` or `size` = (height, width)).

    NumPy input: H x W or H x W x C, any real dtype; the result is float64 and NOT
    rounded (round and clip yourself to reproduce MATLAB's uint8 output).
    torch input: ... x H x W float tensor (e.g. N x C x H x W); same dtype and device.
    """
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; choose from {', '.join(sorted(KERNELS))}")
    is_numpy = isinstance(image, np.ndarray)
    if is_numpy:
        if image.ndim not in (2, 3):
            raise ValueError(f"expected H x W or H x W x C, got shape {image.shape}")
        axes = (0, 1)
    else:
        if image.ndim < 2 or not image.is_floating_point():
            raise ValueError("expected a floating-point tensor of shape ... x H x W")
        axes = (image.ndim - 2, image.ndim - 1)
    in_size = (image.shape[axes[0]], image.shape[axes[1]])
    if (scale is None) == (size is None):
        raise ValueError("give exactly one of scale or size")
    if size is None:
        if scale <= 0:
            raise ValueError(f"scale must be positive, got {scale}")
        scales = (float(scale), float(scale))
        size = output_size(in_size, scale)
    else:
        if min(size) < 1:
            raise ValueError(f"output size must be positive, got {size}")
        scales = (size[0] / in_size[0], size[1] / in_size[1])
    if min(in_size) < 1:
        raise ValueError(f"cannot resize an empty image of size {in_size}")

    out = image.astype(np.float64) if is_numpy else image
    for dim in sorted(range(2), key=lambda d: scales[d]):  # smaller scale first, as MATLAB
        indices, weights = contributions(in_size[dim], size[dim], scales[dim], kernel)
        out = _resize_axis(out, axes[dim], indices, weights)
    return out


def _resize_axis(x: Array, axis: int, indices: np.ndarray, weights: np.ndarray) -> Array:
    """Weighted sum of gathered rows/columns, one tap at a time to bound memory."""
    shape = [1] * x.ndim
    shape[axis] = -1
    if isinstance(x, np.ndarray):
        out = np.zeros_like(x, shape=[*x.shape[:axis], indices.shape[0], *x.shape[axis + 1 :]])
        for tap in range(indices.shape[1]):
            out += np.take(x, indices[:, tap], axis=axis) * weights[:, tap].reshape(shape)
        return out
    import torch

    index = torch.tensor(indices, device=x.device)  # copies: the cached array is read-only
    weight = torch.tensor(weights, dtype=x.dtype, device=x.device)
    out = None
    for tap in range(indices.shape[1]):
        term = x.index_select(axis, index[:, tap]) * weight[:, tap].reshape(shape)
        out = term if out is None else out + term
    return out
