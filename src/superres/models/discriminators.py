"""The discriminators of the GAN-trained SR models: SRGAN's (Ledig et al., CVPR 2017) for
96x96 HR patches and ESRGAN's VGG-128 (Wang et al., ECCVW 2018; BasicSR's
`VGGStyleDiscriminator`) for 128x128 patches.

They are not in the SR model registry: they judge HR patches rather than upscale. Both are
VGG-style: pairs of a 3x3 stride-1 conv and a stride-2 conv, each with batch norm (except
the first) and LeakyReLU 0.2, then two dense layers. They return one logit per patch, without
the paper's final sigmoid, so that the losses can use the numerically stable
`binary_cross_entropy_with_logits` (and ESRGAN's relativistic loss needs the raw scores).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

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
