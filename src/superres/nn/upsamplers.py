"""The survey's learnable upsamplers: sub-pixel convolution, transposed convolution,
and interpolation followed by a convolution."""

from __future__ import annotations

from torch import nn

from superres.nn.interpolation import Interpolate
from superres.nn.layers import conv


class SubPixel(nn.Sequential):
    """Sub-pixel convolution (ESPCN): a conv to out * scale^2 channels, then pixel shuffle."""

    def __init__(self, in_channels: int, out_channels: int, scale: int, kernel: int = 3) -> None:
        super().__init__(conv(in_channels, out_channels * scale**2, kernel), nn.PixelShuffle(scale))


class TransposedConv(nn.ConvTranspose2d):
    """Transposed convolution with stride `scale` whose output is exactly `scale` x the input.

    Padding kernel // 2 and output padding scale - 1 centre the kernel on each input pixel
    (FSRCNN's 9x9 deconvolution).
    """

    def __init__(self, in_channels: int, out_channels: int, scale: int, kernel: int = 9) -> None:
        super().__init__(
            in_channels, out_channels, kernel, stride=scale, padding=kernel // 2,
            output_padding=scale - 1,
        )


class InterpolateConv(nn.Sequential):
    """Interpolation (bicubic by default) followed by a convolution."""

    def __init__(
        self, in_channels: int, out_channels: int, scale: int, kernel: int = 3, mode: str = "cubic"
    ) -> None:
        super().__init__(Interpolate(scale, mode), conv(in_channels, out_channels, kernel))
