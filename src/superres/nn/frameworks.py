"""Where upsampling happens, the survey's four frameworks: pre-upsampling (SRCNN, VDSR),
post-upsampling (FSRCNN, ESPCN; the RGB skeleton EDSR, RDN and RCAN share), progressive (a
Laplacian pyramid of x2 levels, LapSRN) and iterative up-and-down sampling (DBPN's
back-projection units live in `superres.nn.blocks.projection`).

The progressive framework: every level upsamples the features and the image by 2 and adds the
band (residual) predicted from the features to the upsampled image, so x8 is three x2 steps and
every step is supervised with the HR image downscaled to its size (`MultiSupervised`). Levels
may share one set of weights (MS-LapSRN).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from superres.image.resize import imresize
from superres.nn.layers import conv
from superres.nn.supervision import LossFn, MultiSupervised
from superres.nn.upsamplers import Interpolate, SubPixelUpsampler

DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)  # the 800 DIV2K training images, as EDSR uses it


class PreUpsampling(nn.Module):
    """Bicubic upsampling first, then a network that refines at HR size (SRCNN, VDSR).

    `input_upsampled = True` makes the model take inputs already at HR size: multi-scale
    training interpolates each sample by its own scale, and the network is the same at all."""

    def __init__(self, body: nn.Module, scale: int, kernel: str = "cubic") -> None:
        super().__init__()
        self.upsample = Interpolate(scale, kernel)
        self.body = body
        self.input_upsampled = False

    def upsample_input(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.input_upsampled else self.upsample(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.upsample_input(x))


class GuidedPreUpsampling(PreUpsampling):
    """Pre-upsampling with a guide at HR size (colour-guided depth SR): the body takes the
    upsampled target and the guide. With a guide, the target is interpolated to the guide's
    size, so one network serves every scale; without one, the target upsampled by `scale`
    guides itself, so the model still maps one image to one image like any other."""

    def __init__(self, body: nn.Module, scale: int, guide_channels: int = 3) -> None:
        super().__init__(body, scale)
        self.guide_channels = guide_channels

    def forward(self, x: torch.Tensor, guide: torch.Tensor | None = None) -> torch.Tensor:
        if guide is None:
            target = self.upsample_input(x)
            guide = target.expand(-1, self.guide_channels, -1, -1)
        elif self.input_upsampled:
            target = x
        else:
            (height, width), (rows, cols) = guide.shape[-2:], x.shape[-2:]
            if height % rows or height // rows * cols != width:
                raise ValueError(f"the guide is {width}x{height}: it must be an integer "
                                 f"multiple of the {cols}x{rows} input")
            target = imresize(x, size=(height, width))
        return self.body(target, guide)


class PostUpsampling(nn.Sequential):
    """Features at LR size, then a learnable upsampler at the end (FSRCNN, ESPCN, EDSR)."""

    def __init__(self, body: nn.Module, upsampler: nn.Module) -> None:
        super().__init__()
        self.body = body
        self.upsampler = upsampler


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


def pyramid_levels(scale: int) -> int:
    """log2(scale): the number of x2 levels; the pyramid only reaches powers of two."""
    if scale < 2 or scale & (scale - 1):
        raise ValueError(f"a Laplacian pyramid upsamples by powers of two, not {scale}")
    return scale.bit_length() - 1


class PyramidLevel(nn.Module):
    """One x2 level: `features` upsamples the features, `residual` turns them into the band,
    `image` upsamples the coarser image; the level's SR image is the upsampled image + band."""

    def __init__(self, features: nn.Module, residual: nn.Module, image: nn.Module) -> None:
        super().__init__()
        self.features = features
        self.residual = residual
        self.image = image

    def forward(
        self, features: torch.Tensor, image: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.features(features)
        return features, self.image(image) + self.residual(features)


class LaplacianPyramid(MultiSupervised):
    """Progressive upsampling to `scale`: embed the LR image, then log2(scale) pyramid levels.

    `levels` holds one level per x2 step, or a single level reused at every step (parameter
    sharing across levels: the same weights then serve every scale). `levels_used` below
    `num_levels` stops the pyramid early: a scale curriculum trains x2 before x4 and x8.
    """

    def __init__(self, embed: nn.Module, levels: Sequence[PyramidLevel], scale: int) -> None:
        super().__init__()
        self.num_levels = pyramid_levels(scale)
        if len(levels) not in (1, self.num_levels):
            raise ValueError(f"x{scale} needs {self.num_levels} levels (or 1 shared), not "
                             f"{len(levels)}")
        self.embed = embed
        self.levels = nn.ModuleList(levels)
        self.levels_used = self.num_levels

    def pyramid(self, lr: torch.Tensor) -> list[torch.Tensor]:
        """The SR image of every level, x2 first."""
        features, image = self.embed(lr), lr
        outputs = []
        for index in range(self.levels_used):
            features, image = self.levels[index % len(self.levels)](features, image)
            outputs.append(image)
        return outputs

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        return self.pyramid(lr)[-1]

    def training_loss(
        self, lr: torch.Tensor, hr: torch.Tensor, loss_fn: LossFn, step: int
    ) -> torch.Tensor:
        """Sum over levels of `loss_fn` (LapSRN: Charbonnier) against the HR image downscaled
        (MATLAB bicubic) to each level's size: every level learns its own band."""
        outputs = self.pyramid(lr)
        with torch.no_grad():
            targets = [imresize(hr, size=tuple(out.shape[-2:])) for out in outputs[:-1]]
        return sum(
            (loss_fn(out, target) for out, target in zip(outputs, [*targets, hr], strict=True)),
            torch.zeros((), device=lr.device),
        )
