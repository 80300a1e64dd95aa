"""SRResNet and SRGAN's generator: Ledig et al., "Photo-Realistic Single Image
Super-Resolution Using a Generative Adversarial Network", CVPR 2017.

Post-upsampling on [0, 1] RGB, the paper's Figure 4: a 9x9 conv to 64 features + PReLU, 16
residual blocks (conv-BN-PReLU-conv-BN), a conv-BN closing the trunk inside a long skip, two
sub-pixel x2 stages (conv to 256, pixel shuffle, PReLU) and a 9x9 output conv. The paper
leaves two details open; here PReLU has one slope per channel (He et al.'s default) and the
convolutions followed by batch norm have no bias (BN subtracts it again). `srresnet` is the
MSE-trained network; `srgan` the same network for GAN-trained weights (VGG54 content loss +
adversarial loss), without a PSNR reference: the paper optimises it for perceptual quality,
and its SRGAN PSNR figures in published_results.md are recalled, not checked.

The paper scales HR images to [-1, 1]; here both ends are [0, 1], as in the public PyTorch
port whose weights `superres.models.convert.gan` loads (Lornatang/SRGAN-PyTorch). The
reference SSIMs are left out: the paper computed them with another SSIM (see
published_results.md), so only its PSNRs are comparable. PyTorch's default initialisation.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from superres.models.registry import ModelSpec
from superres.nn.blocks.residual import Residual
from superres.nn.frameworks import PostUpsampling
from superres.nn.layers import conv
from superres.nn.upsamplers import SubPixel, sub_pixel_factors

PAPER = (
    "Ledig et al., Photo-Realistic Single Image Super-Resolution Using a Generative "
    "Adversarial Network, CVPR 2017"
)


def conv_bn(in_channels: int, out_channels: int, kernel: int = 3) -> nn.Sequential:
    """A 'same' convolution followed by batch norm; the conv has no bias, which BN cancels."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(out_channels),
    )


class BNResidualBlock(Residual):
    """SRGAN's residual block: conv-BN-PReLU-conv-BN plus the identity (ResNet's block as
    Gross and Wilber trained it, which EDSR later stripped of batch norm)."""

    def __init__(self, channels: int) -> None:
        super().__init__(nn.Sequential(
            conv_bn(channels, channels), nn.PReLU(channels), conv_bn(channels, channels)
        ))


class UnitTanh(nn.Module):
    """(tanh(x) + 1) / 2: an output squashed into [0, 1], as leftthomas/SRGAN's generator."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (torch.tanh(x) + 1) / 2


def srresnet(
    scale: int, blocks: int = 16, channels: int = 64,
    trunk_end: Literal["bn", "prelu"] = "bn", output: Literal["linear", "tanh"] = "linear",
) -> nn.Module:
    """SRResNet with `blocks` residual blocks of `channels` features; x2 has one sub-pixel
    stage, x4 two (x3 one x3 stage). `trunk_end` and `output` build the variants of
    leftthomas/SRGAN, whose released generators load here: its trunk closes with conv-BN (a
    conv-PReLU in January 2018) and its output is (tanh + 1) / 2."""
    head = nn.Sequential(conv(3, channels, 9), nn.PReLU(channels))
    end = (conv_bn(channels, channels) if trunk_end == "bn"
           else nn.Sequential(conv(channels, channels, 3), nn.PReLU(channels)))
    trunk = Residual(nn.Sequential(*(BNResidualBlock(channels) for _ in range(blocks)), end))
    stages = (nn.Sequential(SubPixel(channels, channels, factor), nn.PReLU(channels))
              for factor in sub_pixel_factors(scale))
    last = [conv(channels, 3, 9), *([UnitTanh()] if output == "tanh" else [])]
    return PostUpsampling(nn.Sequential(head, trunk), nn.Sequential(*stages, *last))


SRRESNET = ModelSpec(
    name="srresnet",
    summary="SRResNet (SRGAN's generator, MSE): 16 BN residual blocks, 64 features, PReLU, RGB",
    paper=PAPER,
    scales=(2, 4),
    build=srresnet,
    color="rgb",
    framework="post-upsampling",
    reference={  # published_results.md (x4, ImageNet subset); PSNR only, see above
        "Set5": {4: (32.05, None)},
        "Set14": {4: (28.49, None)},
        "BSD100": {4: (27.58, None)},
    },
)

SRGAN = ModelSpec(
    name="srgan",
    summary="SRGAN: SRResNet trained with VGG54 content and adversarial losses, RGB",
    paper=PAPER,
    scales=(4,),
    build=srresnet,
    color="rgb",
    framework="post-upsampling",
)
