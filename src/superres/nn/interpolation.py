"""Interpolation as a network module, so classic upscalers run through the same pipeline.

For an integer upscaling factor, MATLAB's `imresize` is a polyphase filter: output pixel
s*k + r is a fixed weighted sum of input pixels k-2..k+2 (cubic) that depends only on the
phase r. So it is one small convolution with s^2 output channels and a pixel shuffle, on
the input padded symmetrically (MATLAB mirrors indices the same way). That is exact, several
times faster than gathering rows and columns, and exports to ONNX with dynamic sizes.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from superres.resize import KERNELS, imresize


def polyphase_weights(scale: int, kernel: str) -> torch.Tensor:
    """(scale^2, 1, T, T) convolution weights of MATLAB imresize upscaling by `scale`.

    Phase r of an axis has its output pixel centre at input coordinate k + f_r with
    f_r = (r + 0.5) / scale - 0.5; its taps are at k + d, weighted kernel(f_r - d) and
    normalised as MATLAB normalises each output pixel's weights.
    """
    spec = KERNELS[kernel]
    reach = math.ceil(spec.width / 2)
    offsets = np.arange(-reach, reach + 1)
    phases = np.stack([
        spec.function((r + 0.5) / scale - 0.5 - offsets) for r in range(scale)
    ])
    phases /= phases.sum(axis=1, keepdims=True)
    taps = 2 * reach + 1
    return torch.from_numpy(np.einsum("ai,bj->abij", phases, phases).reshape(-1, 1, taps, taps))


def pad_symmetric(x: torch.Tensor, pad: int) -> torch.Tensor:
    """Pad the last two dims by mirroring with the edge repeated (numpy 'symmetric'),
    which is how MATLAB's imresize extends an image."""
    for dim in (-2, -1):
        length = x.shape[dim]
        before = x.narrow(dim, 0, pad).flip(dim)
        after = x.narrow(dim, length - pad, pad).flip(dim)
        x = torch.cat([before, x, after], dim=dim)
    return x


class Interpolate(nn.Module):
    """Upscale N x C x H x W by `scale` with a MATLAB `imresize` kernel; no parameters."""

    def __init__(self, scale: float, kernel: str = "cubic") -> None:
        super().__init__()
        self.scale = scale
        self.kernel = kernel
        polyphase = scale >= 1 and float(scale).is_integer() and kernel in KERNELS
        weights = polyphase_weights(int(scale), kernel) if polyphase else None
        self.register_buffer("phases", weights, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.phases is None or min(x.shape[-2:]) <= self.phases.shape[-1] // 2:
            return imresize(x, self.scale, kernel=self.kernel)
        *batch, height, width = x.shape
        out = F.pixel_shuffle(self.phase_planes(x).reshape(-1, *self.phases.shape[:1],
                                                           height, width), int(self.scale))
        return out.reshape(*batch, out.shape[-2], out.shape[-1])

    def phase_planes(self, x: torch.Tensor) -> torch.Tensor:
        """N x C x H x W -> N x C x s^2 x H x W: the output before its pixel shuffle, phase
        r1 * s + r2 holding output pixels (s*k + r1, s*l + r2); channels last, so that a
        caller can finish the pixels at LR size (exact polyphase scales only)."""
        if self.phases is None:
            raise ValueError(f"no polyphase form for scale {self.scale} with {self.kernel!r}")
        *batch, height, width = x.shape
        if min(height, width) <= self.phases.shape[-1] // 2:  # too small to mirror: gather
            planes = F.pixel_unshuffle(imresize(x.reshape(-1, 1, height, width), self.scale),
                                       int(self.scale))
        else:
            planes = pad_symmetric(x.reshape(-1, 1, height, width), self.phases.shape[-1] // 2)
            # NHWC weight strides (a 1-channel tensor is both layouts, so give the strides)
            # for an NHWC result: phase planes that a caller reads pixel by pixel
            weights = self.phases.to(x.dtype)
            taps = weights.shape[-1]
            planes = F.conv2d(planes, weights.as_strided(weights.shape, (taps * taps, 1, taps, 1)))
        return planes.view(*batch, -1, height, width)

    def extra_repr(self) -> str:
        return f"scale={self.scale}, kernel={self.kernel!r}"
