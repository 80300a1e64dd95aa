"""RGB <-> YCbCr exactly as MATLAB's rgb2ycbcr / ycbcr2rgb (ITU-R BT.601, studio swing).

SR papers measure PSNR/SSIM on this Y channel (16..235), not on a full-range luma: the
full-range JPEG luma scales every error by 255/219 and lowers PSNR by about 1.32 dB.
All functions take values in [0, 1] (channels last for NumPy, channels at dim -3 for torch)
and work on any float dtype; they are linear, so gradients flow through them.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np

# Rows give Y, Cb, Cr from R, G, B in [0, 1], in units of 1/255 (MATLAB's `origT`).
_RGB_TO_YCBCR = np.array(
    [
        [65.481, 128.553, 24.966],
        [-37.797, -74.203, 112.0],
        [112.0, -93.786, -18.214],
    ]
) / 255.0
_OFFSET = np.array([16.0, 128.0, 128.0]) / 255.0
_YCBCR_TO_RGB = np.linalg.inv(_RGB_TO_YCBCR)

Array = TypeVar("Array")


def _apply(x: Array, matrix: np.ndarray, channel_dim: int) -> Array:
    """Multiply the channel axis of `x` (NumPy: last; torch: `channel_dim`) by `matrix`."""
    if isinstance(x, np.ndarray):
        if x.shape[-1] != 3:
            raise ValueError(f"expected 3 channels last, got shape {x.shape}")
        return x @ matrix.T.astype(x.dtype if x.dtype.kind == "f" else np.float64)
    import torch

    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected a NumPy array or a torch tensor, got {type(x).__name__}")
    if x.shape[channel_dim] != 3:
        raise ValueError(f"expected 3 channels at dim {channel_dim}, got shape {tuple(x.shape)}")
    weight = torch.as_tensor(matrix, dtype=x.dtype, device=x.device)
    return torch.einsum("ij,...jhw->...ihw", weight, x)


def _offset(x: Array, sign: float) -> Array:
    if isinstance(x, np.ndarray):
        return x + sign * _OFFSET.astype(x.dtype)
    import torch

    return x + sign * torch.as_tensor(_OFFSET, dtype=x.dtype, device=x.device).view(3, 1, 1)


def rgb_to_ycbcr(rgb: Array) -> Array:
    """RGB in [0, 1] -> YCbCr in [0, 1] (Y in [16, 235]/255), as MATLAB rgb2ycbcr on doubles."""
    return _offset(_apply(rgb, _RGB_TO_YCBCR, -3), +1.0)


def ycbcr_to_rgb(ycbcr: Array) -> Array:
    """Inverse of `rgb_to_ycbcr` (MATLAB ycbcr2rgb on doubles); no clipping."""
    return _apply(_offset(ycbcr, -1.0), _YCBCR_TO_RGB, -3)


def rgb_to_y(rgb: Array) -> Array:
    """BT.601 studio-swing luma in [16, 235]/255, keeping a channel axis of size 1."""
    return _apply(rgb, _RGB_TO_YCBCR[:1], -3) + _OFFSET[0]
