"""The survey's upsamplers, all in one place: interpolation (MATLAB imresize kernels as an
exact polyphase convolution), interpolation followed by a convolution, transposed convolution
(FSRCNN; LapSRN's bilinear-initialised image branch), sub-pixel convolution (ESPCN; EDSR's
multi-stage form) and ESRGAN's nearest-neighbour-plus-convolution stage.

Interpolation as a module lets classic upscalers run through the same pipeline as networks.
For an integer factor, MATLAB's `imresize` is a polyphase filter: output pixel s*k + r is a
fixed weighted sum of input pixels k-2..k+2 (cubic) that depends only on the phase r. So it is
one small convolution with s^2 output channels and a pixel shuffle, on the input padded
symmetrically (MATLAB mirrors indices the same way). That is exact, several times faster than
gathering rows and columns, and exports to ONNX with dynamic sizes.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from superres.image.resize import KERNELS, imresize
from superres.nn.layers import conv, leaky_relu


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


class InterpolateConv(nn.Sequential):
    """Interpolation (bicubic by default) followed by a convolution."""

    def __init__(
        self, in_channels: int, out_channels: int, scale: int, kernel: int = 3, mode: str = "cubic"
    ) -> None:
        super().__init__(Interpolate(scale, mode), conv(in_channels, out_channels, kernel))


class SubPixel(nn.Sequential):
    """Sub-pixel convolution (ESPCN): a conv to out * scale^2 channels, then pixel shuffle."""

    def __init__(self, in_channels: int, out_channels: int, scale: int, kernel: int = 3) -> None:
        super().__init__(conv(in_channels, out_channels * scale**2, kernel), nn.PixelShuffle(scale))


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


class TransposedConv(nn.ConvTranspose2d):
    """Transposed convolution with stride `scale` whose output is exactly `scale` x the input.

    Output row `scale * i + a - crop` receives input row i times kernel row a. The default
    crop, kernel // 2 (padding kernel // 2 and output padding scale - 1 in PyTorch's terms),
    centres the kernel on each input pixel (FSRCNN's 9x9 deconvolution). The authors'
    MatConvNet LapSRN crops [0 1 0 1] (`crop=0`); FSRCNN's MATLAB test code (deconv.m)
    upsamples the input with `border` = 1 replicated pixel on each side, so the outermost
    output rows also receive the edge pixels' neighbours. The weights keep the
    transposed-convolution layout; the forward pass computes the same function as a stride-1
    convolution to scale^2 phases and a pixel shuffle, which trains about twice as fast on
    CPU as PyTorch's transposed kernels.
    """

    def __init__(
        self, in_channels: int, out_channels: int, scale: int, kernel: int = 9,
        crop: int | None = None, border: int = 0,
    ) -> None:
        crop = kernel // 2 if crop is None else crop
        if not 0 <= 2 * crop < kernel:
            raise ValueError(f"TransposedConv crops fewer than half the kernel's rows (an odd "
                             f"kernel is centred by default); got kernel {kernel}, crop {crop}")
        extra = scale - kernel + 2 * crop  # the output padding that gives scale x the input
        exact = 0 <= extra < scale  # else ONNX export crops PyTorch's full output itself
        super().__init__(
            in_channels, out_channels, kernel, stride=scale, padding=crop if exact else 0,
            output_padding=extra if exact else 0,
        )
        self.crop = crop
        self.border = border

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        scale, border = self.stride[0], self.border
        height, width = x.shape[-2:]
        if border:
            x = F.pad(x, (border,) * 4, mode="replicate")
        if torch.onnx.is_in_onnx_export():  # exported graphs keep the standard ConvTranspose
            y, first = super().forward(x), self.crop - self.padding[0] + scale * border
        else:
            weight, bias, (before, after) = phase_kernel(self.weight, self.bias, scale, self.crop)
            y = F.pixel_shuffle(F.conv2d(F.pad(x, (before, after, before, after)), weight, bias),
                                scale)
            first = scale * border
        if not border and self.padding[0] == self.crop:
            return y
        return y[..., first : first + scale * height, first : first + scale * width]


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


def bilinear_kernel(size: int) -> torch.Tensor:
    """The size x size kernel of bilinear upsampling by (size + 1) // 2 as a transposed conv."""
    factor = (size + 1) // 2
    center = factor - 1 if size % 2 else factor - 0.5
    taps = 1 - (torch.arange(size, dtype=torch.float32) - center).abs() / factor
    return taps[:, None] * taps[None, :]


class BilinearUpsampler(nn.ConvTranspose2d):
    """A learnable x2 image upsampler: a 4x4 transposed convolution without bias, starting as
    bilinear interpolation (LapSRN's image branch), so the pyramid starts from a sane image."""

    def __init__(self, channels: int = 1) -> None:
        super().__init__(channels, channels, 4, stride=2, padding=1, bias=False)
        with torch.no_grad():
            self.weight.zero_()
            for channel in range(channels):
                self.weight[channel, channel] = bilinear_kernel(4)


def doublings(scale: int) -> int:
    """How many x2 `NearestConv` stages make `scale` (ESRGAN upsamples in x2 steps only)."""
    if scale < 2 or scale & (scale - 1):
        raise ValueError(f"nearest-neighbour upsampling runs in x2 stages: the scale must be a "
                         f"power of two, not {scale}")
    return scale.bit_length() - 1


class NearestConv(nn.Sequential):
    """ESRGAN's upsampling stage: nearest-neighbour x`factor`, a 3x3 conv, LeakyReLU.

    `nn.Upsample` rather than `InterpolateConv`: MATLAB's nearest
    kernel gives the same pixels at integer factors, but this is the operation the official
    code runs and the fastest one on wide feature maps."""

    def __init__(self, channels: int, factor: int = 2) -> None:
        super().__init__(nn.Upsample(scale_factor=factor, mode="nearest"),
                         conv(channels, channels, 3), leaky_relu())
