"""Residual components of the EDSR family: mean shift, residual blocks and groups, EDSR's
multi-stage sub-pixel upsampler, and the RGB post-upsampling skeleton EDSR, RDN and RCAN share."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from superres.nn.layers import conv
from superres.nn.upsamplers import SubPixel

DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)  # the 800 DIV2K training images, as EDSR uses it


class MeanShift(nn.Module):
    """Between [0, 1] RGB and the centred [0, rgb_range] scale the official EDSR-family code
    works in: sign -1 maps x to W (rgb_range x) + b, sign +1 maps y to (W y + b) / rgb_range.

    W (3x3) and b are the official 1x1 `MeanShift` convolution (identity and -/+ rgb_range x
    mean by default), held as buffers: never trained, but saved with the weights. The official
    layer set `requires_grad` on the module, which freezes nothing, so a released checkpoint
    may carry trained values; keeping them is what makes converted weights give the authors'
    outputs exactly.
    """

    def __init__(
        self, sign: Literal[-1, 1], rgb_range: float = 255.0,
        mean: Sequence[float] = DIV2K_RGB_MEAN,
    ) -> None:
        super().__init__()
        self.sign, self.rgb_range, self.mean = sign, float(rgb_range), tuple(mean)
        self.register_buffer("weight", torch.eye(3).view(3, 3, 1, 1))
        self.register_buffer("bias", sign * self.rgb_range * torch.tensor(self.mean))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.sign < 0:
            return F.conv2d(x * self.rgb_range, self.weight, self.bias)
        return F.conv2d(x, self.weight, self.bias) / self.rgb_range

    def extra_repr(self) -> str:
        return f"sign={self.sign}, rgb_range={self.rgb_range}, mean={self.mean}"


class Residual(nn.Module):
    """x + scale * body(x): a skip connection around any body (local, group or global
    residual learning). A scale below 1 is EDSR's residual scaling, which keeps very wide
    networks stable in training."""

    def __init__(self, body: nn.Module, scale: float = 1.0) -> None:
        super().__init__()
        self.body = body
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return x + (out if self.scale == 1 else out * self.scale)

    def extra_repr(self) -> str:
        return "" if self.scale == 1 else f"scale={self.scale}"


class ResidualBlock(Residual):
    """EDSR's residual block: conv-ReLU-conv without batch norm (which EDSR removed: it
    normalises away the range flexibility SR needs), optionally followed on the residual
    branch by `attention` (RCAN's channel attention)."""

    def __init__(
        self, channels: int, res_scale: float = 1.0, kernel: int = 3,
        attention: nn.Module | None = None,
    ) -> None:
        layers = [conv(channels, channels, kernel), nn.ReLU(inplace=True),
                  conv(channels, channels, kernel)]
        if attention is not None:
            layers.append(attention)
        super().__init__(nn.Sequential(*layers), res_scale)


class ResidualGroup(Residual):
    """Blocks then a convolution, with a skip connection around both: EDSR's trunk and
    RCAN's residual group; a group of groups is RCAN's residual-in-residual structure."""

    def __init__(self, blocks: Iterable[nn.Module], channels: int, kernel: int = 3) -> None:
        super().__init__(nn.Sequential(*blocks, conv(channels, channels, kernel)))


def sub_pixel_factors(scale: int) -> list[int]:
    """EDSR's stages: x3 in one step, a power of two as successive x2 steps."""
    if scale == 3:
        return [3]
    if scale >= 2 and scale & (scale - 1) == 0:
        return [2] * (scale.bit_length() - 1)
    raise ValueError(f"the sub-pixel upsampler supports x3 and powers of two, not x{scale}")


class SubPixelUpsampler(nn.Sequential):
    """EDSR's upsampler: sub-pixel convolutions (conv to channels x factor^2, pixel shuffle)
    for each of `sub_pixel_factors(scale)`; x4 is two x2 stages, not one x4 shuffle."""

    def __init__(self, in_channels: int, channels: int, scale: int, kernel: int = 3) -> None:
        factors = sub_pixel_factors(scale)
        super().__init__(*(
            SubPixel(in_channels if i == 0 else channels, channels, factor, kernel)
            for i, factor in enumerate(factors)
        ))


class RGBPostUpsampling(nn.Sequential):
    """The skeleton EDSR, RDN and RCAN share: mean shift of [0, 1] RGB into the official
    [0, rgb_range] scale, a head convolution to `channels` features, `body` (which carries the
    global skip connection), a sub-pixel upsampler and a convolution back to RGB, then mean
    shift back to [0, 1].

    Working in the official scale inside (rather than rescaling the weights) keeps the
    authors' tensors unchanged on conversion, and is the only exact choice for RCAN, whose
    sigmoid attention is not scale-invariant.
    """

    def __init__(
        self, body: nn.Module, channels: int, scale: int, upsampler_channels: int | None = None,
        mean: Sequence[float] = DIV2K_RGB_MEAN, rgb_range: float = 255.0,
    ) -> None:
        super().__init__()
        upsampler_channels = upsampler_channels or channels
        self.sub_mean = MeanShift(-1, rgb_range, mean)
        self.head = conv(3, channels, 3)
        self.body = body
        self.upsampler = nn.Sequential(
            SubPixelUpsampler(channels, upsampler_channels, scale), conv(upsampler_channels, 3, 3)
        )
        self.add_mean = MeanShift(1, rgb_range, mean)
