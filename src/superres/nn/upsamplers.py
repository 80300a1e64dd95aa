"""The survey's learnable upsamplers: sub-pixel convolution, transposed convolution,
and interpolation followed by a convolution."""

from __future__ import annotations

import torch
import torch.nn.functional as F
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
    (FSRCNN's 9x9 deconvolution). The weights keep the transposed-convolution layout; the
    forward pass computes the same function as a stride-1 convolution to scale^2 phases and
    a pixel shuffle, which trains about twice as fast on CPU as PyTorch's transposed kernels.
    """

    def __init__(self, in_channels: int, out_channels: int, scale: int, kernel: int = 9) -> None:
        if kernel % 2 == 0:
            raise ValueError(f"TransposedConv needs an odd kernel to centre it; got {kernel}")
        super().__init__(
            in_channels, out_channels, kernel, stride=scale, padding=kernel // 2,
            output_padding=scale - 1,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        if torch.onnx.is_in_onnx_export():  # exported graphs keep the standard ConvTranspose
            return super().forward(x)
        scale = self.stride[0]
        weight, bias, (before, after) = phase_kernel(self.weight, self.bias, scale, self.padding[0])
        x = F.pad(x, (before, after, before, after))
        return F.pixel_shuffle(F.conv2d(x, weight, bias), scale)


def phase_kernel(
    weight: torch.Tensor, bias: torch.Tensor | None, stride: int, padding: int
) -> tuple[torch.Tensor, torch.Tensor | None, tuple[int, int]]:
    """Rewrite a transposed convolution (weight `in, out, k, k`) as a convolution to
    `out * stride^2` phase channels for a pixel shuffle; returns weight, bias, input padding.

    Output row `stride * i + r` sums `x[i - q] * w[stride * q + r + padding]` over the q that
    index inside the kernel, so every phase is a correlation over the same few input rows.
    """
    channels_in, channels_out, k, _ = weight.shape
    q_min, q_max = -((stride - 1 + padding) // stride), (k - 1 - padding) // stride
    taps = torch.arange(q_max, q_min - 1, -1, device=weight.device)
    index = stride * taps[None, :] + torch.arange(stride, device=weight.device)[:, None] + padding
    inside = (index >= 0) & (index < k)
    index = index.clamp(0, k - 1)
    phases = weight[:, :, index[:, None, :, None], index[None, :, None, :]]
    phases = phases * (inside[:, None, :, None] & inside[None, :, None, :])
    n = len(taps)
    phases = phases.permute(1, 2, 3, 0, 4, 5).reshape(channels_out * stride**2, channels_in, n, n)
    phase_bias = None if bias is None else bias.repeat_interleave(stride**2)
    return phases, phase_bias, (q_max, -q_min)


class InterpolateConv(nn.Sequential):
    """Interpolation (bicubic by default) followed by a convolution."""

    def __init__(
        self, in_channels: int, out_channels: int, scale: int, kernel: int = 3, mode: str = "cubic"
    ) -> None:
        super().__init__(Interpolate(scale, mode), conv(in_channels, out_channels, kernel))
