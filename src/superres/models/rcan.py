"""RCAN: Zhang, Li, Li, Wang, Zhong and Fu, "Image Super-Resolution Using Very Deep Residual
Channel Attention Networks", ECCV 2018. Post-upsampling on RGB: a head conv, residual in
residual (10 residual groups of 20 residual channel attention blocks, each group and the
whole trunk closed by a conv and a skip connection), a sub-pixel upsampler and an output
conv, in the [0, 255] mean-shifted scale of the official code so its weights load unchanged."""

from __future__ import annotations

from torch import nn

from superres.models.registry import ModelSpec
from superres.nn.blocks.attention import residual_in_residual
from superres.nn.frameworks import RGBPostUpsampling


def rcan(
    scale: int, groups: int = 10, blocks: int = 20, channels: int = 64, reduction: int = 16
) -> nn.Module:
    """RCAN with `groups` residual groups of `blocks` RCABs, channel attention reduction 16."""
    return RGBPostUpsampling(residual_in_residual(groups, blocks, channels, reduction),
                             channels, scale)


RCAN = ModelSpec(
    name="rcan",
    summary="RCAN: 10 residual groups x 20 channel-attention blocks, 64 channels, RGB",
    paper="Zhang, Li, Li, Wang, Zhong and Fu, Image Super-Resolution Using Very Deep Residual "
    "Channel Attention Networks, ECCV 2018",
    scales=(2, 3, 4),
    build=rcan,
    color="rgb",
    framework="post-upsampling",
    reference={  # published_results.md (SwinIR's Table 2)
        "Set5": {2: (38.27, 0.9614), 3: (34.74, 0.9299), 4: (32.63, 0.9002)},
        "Set14": {2: (34.12, 0.9216), 3: (30.65, 0.8482), 4: (28.87, 0.7889)},
        "BSD100": {2: (32.41, 0.9027), 3: (29.32, 0.8111), 4: (27.77, 0.7436)},
        "Urban100": {2: (33.34, 0.9384), 3: (29.09, 0.8702), 4: (26.82, 0.8087)},
    },
)
