"""EDSR: Lim et al., "Enhanced Deep Residual Networks for Single Image Super-Resolution",
CVPRW 2017, as in the official EDSR-PyTorch code. Post-upsampling on RGB: a head conv,
residual blocks without batch norm (conv-ReLU-conv) and a conv inside a global skip, a
sub-pixel upsampler (x4 = two x2 stages) and an output conv, in the [0, 255] mean-shifted
scale of the official code so its weights load unchanged. PyTorch's default initialisation,
as the official code."""

from __future__ import annotations

from functools import partial

from torch import nn

from superres.models.registry import ModelSpec
from superres.nn.blocks.residual import ResidualBlock, ResidualGroup
from superres.nn.frameworks import RGBPostUpsampling

PAPER = (
    "Lim, Son, Kim, Nah and Lee, Enhanced Deep Residual Networks for Single Image "
    "Super-Resolution, CVPRW 2017"
)


def edsr(scale: int, blocks: int = 32, channels: int = 256, res_scale: float = 0.1) -> nn.Module:
    """EDSR with `blocks` residual blocks of `channels` features; the paper scales each
    residual by 0.1 in the wide model, which otherwise trains unstably."""
    body = ResidualGroup((ResidualBlock(channels, res_scale) for _ in range(blocks)), channels)
    return RGBPostUpsampling(body, channels, scale)


EDSR_BASELINE = ModelSpec(
    name="edsr-baseline",
    summary="EDSR baseline: 16 residual blocks, 64 channels, no residual scaling, RGB",
    paper=PAPER,
    scales=(2, 3, 4),
    build=partial(edsr, blocks=16, channels=64, res_scale=1.0),
    color="rgb",
    framework="post-upsampling",
    reference={  # published_results.md; the x3 row is marked there as recalled, unverified
        "Set5": {2: (37.99, 0.9604), 3: (34.37, 0.9270), 4: (32.09, 0.8938)},
        "Set14": {2: (33.57, 0.9175), 3: (30.28, 0.8417), 4: (28.58, 0.7813)},
        "BSD100": {2: (32.16, 0.8994), 3: (29.09, 0.8052), 4: (27.57, 0.7357)},
        "Urban100": {2: (31.98, 0.9272), 3: (28.15, 0.8527), 4: (26.04, 0.7849)},
    },
)

EDSR = ModelSpec(
    name="edsr",
    summary="EDSR: 32 residual blocks, 256 channels, residual scaling 0.1, RGB",
    paper=PAPER,
    scales=(2, 3, 4),
    build=edsr,
    color="rgb",
    framework="post-upsampling",
    reference={  # published_results.md
        "Set5": {2: (38.11, 0.9601), 3: (34.65, 0.9282), 4: (32.46, 0.8968)},
        "Set14": {2: (33.92, 0.9195), 3: (30.52, 0.8462), 4: (28.80, 0.7876)},
        "BSD100": {2: (32.32, 0.9013), 3: (29.25, 0.8093), 4: (27.71, 0.7420)},
        "Urban100": {2: (32.93, 0.9351), 3: (28.80, 0.8653), 4: (26.64, 0.8033)},
    },
)
