"""Interpolation as a network module, so classic upscalers run through the same pipeline."""

from __future__ import annotations

import torch
from torch import nn

from superres.resize import imresize


class Interpolate(nn.Module):
    """Upscale N x C x H x W by `scale` with a MATLAB `imresize` kernel; no parameters."""

    def __init__(self, scale: float, kernel: str = "cubic") -> None:
        super().__init__()
        self.scale = scale
        self.kernel = kernel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return imresize(x, self.scale, kernel=self.kernel)

    def extra_repr(self) -> str:
        return f"scale={self.scale}, kernel={self.kernel!r}"
