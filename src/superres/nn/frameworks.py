"""Where upsampling happens: the survey's pre-upsampling and post-upsampling frameworks."""

from __future__ import annotations

import torch
from torch import nn

from superres.nn.interpolation import Interpolate


class PreUpsampling(nn.Module):
    """Bicubic upsampling first, then a network that refines at HR size (SRCNN, VDSR)."""

    def __init__(self, body: nn.Module, scale: int, kernel: str = "cubic") -> None:
        super().__init__()
        self.upsample = Interpolate(scale, kernel)
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.upsample(x))


class PostUpsampling(nn.Sequential):
    """Features at LR size, then a learnable upsampler at the end (FSRCNN, ESPCN, EDSR)."""

    def __init__(self, body: nn.Module, upsampler: nn.Module) -> None:
        super().__init__()
        self.body = body
        self.upsampler = upsampler
