"""The discriminators of the GAN-trained SR models: SRGAN's (Ledig et al., CVPR 2017) for
96x96 HR patches, ESRGAN's VGG-128 (Wang et al., ECCVW 2018; BasicSR's
`VGGStyleDiscriminator`) for 128x128 patches, and Real-ESRGAN's U-Net with spectral
normalisation (Wang et al., ICCVW 2021), which judges every pixel of a patch of any size.

They are not in the SR model registry: they judge HR patches rather than upscale. The first two
are VGG-style: pairs of a 3x3 stride-1 conv and a stride-2 conv, each with batch norm (except
the first) and LeakyReLU 0.2, then two dense layers. They return one logit per patch, without
the paper's final sigmoid, so that the losses can use the numerically stable
`binary_cross_entropy_with_logits` (and ESRGAN's relativistic loss needs the raw scores).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import spectral_norm

from superres.nn.layers import leaky_relu


def _conv_block(in_channels: int, out_channels: int, kernel: int, stride: int,
                norm: bool) -> nn.Sequential:
    """conv (no bias when batch norm follows) [-> BN] -> LeakyReLU 0.2."""
    layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, kernel, stride,
                                         padding=1, bias=not norm)]
    if norm:
        layers.append(nn.BatchNorm2d(out_channels))
    layers.append(leaky_relu())
    return nn.Sequential(*layers)


class VGGDiscriminator(nn.Module):
    """A VGG-style discriminator for `patch` x `patch` RGB patches.

    Stage i is a 3x3 stride-1 conv to widths[i] then a `down_kernel` stride-2 conv, so the
    features leave at patch / 2^stages; a dense layer of `hidden` units and one of 1 follow.
    """

    def __init__(
        self, patch: int, widths: Sequence[int], down_kernel: int, hidden: int,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        side = patch >> len(widths)
        if side < 1 or side << len(widths) != patch:
            raise ValueError(f"{len(widths)} stride-2 stages need a patch side divisible by "
                             f"{1 << len(widths)}, not {patch}")
        self.patch = patch
        blocks = []
        previous = in_channels
        for i, width in enumerate(widths):
            blocks.append(_conv_block(previous, width, 3, 1, norm=i > 0))
            blocks.append(_conv_block(width, width, down_kernel, 2, norm=True))
            previous = width
        self.features = nn.Sequential(*blocks)
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(previous * side * side, hidden), leaky_relu(),
            nn.Linear(hidden, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """N x C x patch x patch -> N x 1 logits (real vs generated)."""
        if x.shape[-2:] != (self.patch, self.patch):
            raise ValueError(f"this discriminator judges {self.patch}x{self.patch} patches, "
                             f"not {x.shape[-2]}x{x.shape[-1]}: its dense layer fixes the size")
        return self.classifier(self.features(x))

    def extra_repr(self) -> str:
        return f"patch={self.patch}"


def srgan_discriminator(patch: int = 96) -> VGGDiscriminator:
    """SRGAN's discriminator: eight 3x3 convs, 64 -> 512 features (stride 2 every second
    one), dense 1024, dense 1; the paper trains it on 96x96 HR patches."""
    return VGGDiscriminator(patch, (64, 128, 256, 512), down_kernel=3, hidden=1024)


def esrgan_discriminator(patch: int = 128) -> VGGDiscriminator:
    """ESRGAN's VGG-128 discriminator (BasicSR `VGGStyleDiscriminator`, num_feat 64): five
    stages 64 -> 512 whose stride-2 convs are 4x4, down to 4x4 features, dense 100, dense 1.
    BasicSR's 256x256 variant adds a sixth 512 stage."""
    widths = {128: (64, 128, 256, 512, 512), 256: (64, 128, 256, 512, 512, 512)}
    if patch not in widths:
        raise ValueError(f"ESRGAN's discriminator takes 128x128 or 256x256 patches, not {patch}")
    return VGGDiscriminator(patch, widths[patch], down_kernel=4, hidden=100)


class UNetDiscriminator(nn.Module):
    """Real-ESRGAN's discriminator: a U-Net whose output is one logit per pixel, so that it
    judges local texture as well as the whole patch, the feedback a generator trained on
    complex degradations needs; spectral normalisation on every inner conv keeps its training
    stable (Wang et al., ICCVW 2021, Sec. 3.3).

    conv `width` -> three 4x4 stride-2 convs doubling the width -> three (bilinear x2, 3x3
    conv halving it, + the encoder's features at that size) -> two 3x3 convs -> 1 channel;
    LeakyReLU 0.2 after every conv but the last. The paper's width is 64; the side must be a
    multiple of 8.
    """

    def __init__(self, width: int = 64, in_channels: int = 3) -> None:
        super().__init__()
        widths = (width, 2 * width, 4 * width, 8 * width)
        self.first = nn.Conv2d(in_channels, width, 3, 1, 1)
        self.down = nn.ModuleList(
            spectral_norm(nn.Conv2d(a, b, 4, 2, 1, bias=False)) for a, b in pairwise(widths)
        )
        self.up = nn.ModuleList(
            spectral_norm(nn.Conv2d(b, a, 3, 1, 1, bias=False))
            for b, a in pairwise(widths[::-1])
        )
        self.head = nn.Sequential(
            spectral_norm(nn.Conv2d(width, width, 3, 1, 1, bias=False)), leaky_relu(),
            spectral_norm(nn.Conv2d(width, width, 3, 1, 1, bias=False)), leaky_relu(),
            nn.Conv2d(width, 1, 3, 1, 1),
        )
        self.act = leaky_relu()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """N x C x H x W (H, W multiples of 8) -> N x 1 x H x W logits."""
        if x.shape[-1] % 8 or x.shape[-2] % 8:
            raise ValueError(f"the U-Net discriminator halves a patch three times: its sides "
                             f"must be multiples of 8, not {x.shape[-2]}x{x.shape[-1]}")
        skips = [self.act(self.first(x))]
        for conv in self.down:
            skips.append(self.act(conv(skips[-1])))
        y = skips.pop()
        for conv in self.up:
            y = F.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False)
            y = self.act(conv(y)) + skips.pop()
        return self.head(y)


def unet_discriminator(patch: int = 256, width: int = 64) -> UNetDiscriminator:
    """Real-ESRGAN's U-Net discriminator; `patch` is only checked (it takes any multiple of
    8), kept for the same call as the others."""
    if patch % 8:
        raise ValueError(f"the U-Net discriminator takes patches whose side is a multiple of "
                         f"8, not {patch}")
    return UNetDiscriminator(width)
