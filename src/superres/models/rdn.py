"""RDN: Zhang, Tian, Kong, Zhong and Fu, "Residual Dense Network for Image
Super-Resolution", CVPR 2018. Post-upsampling on RGB: two shallow convs, D residual dense
blocks (C dense conv-ReLU layers of growth G, 1x1 local fusion to G0, local residual), global
feature fusion of all D block outputs (1x1 then 3x3) with a global residual from the first
conv, and a sub-pixel upsampler. Inputs are scaled to [0, 255] without mean subtraction, as
EDSR-PyTorch's RDN sees them."""

from __future__ import annotations

from torch import nn

from superres.models.registry import ModelSpec
from superres.nn.blocks.dense import residual_dense_trunk
from superres.nn.frameworks import RGBPostUpsampling


def rdn(
    scale: int, blocks: int = 16, layers: int = 8, growth: int = 64, channels: int = 64
) -> nn.Module:
    """RDN with D = `blocks`, C = `layers`, G = `growth`, G0 = `channels` (the paper's
    D=16, C=8, G=64 network; its 3x3 upsampler convs have G channels)."""
    return RGBPostUpsampling(
        residual_dense_trunk(blocks, layers, growth, channels), channels, scale,
        upsampler_channels=growth, mean=(0.0, 0.0, 0.0),
    )


RDN = ModelSpec(
    name="rdn",
    summary="RDN (D=16, C=8, G=64, G0=64), residual dense blocks, global feature fusion, RGB",
    paper="Zhang, Tian, Kong, Zhong and Fu, Residual Dense Network for Image "
    "Super-Resolution, CVPR 2018",
    scales=(2, 3, 4),
    build=rdn,
    color="rgb",
    framework="post-upsampling",
    reference={  # published_results.md; BSD100/Urban100 x2 and Set14/BSD100/Urban100 x3
        # are marked there as recalled, unverified
        "Set5": {2: (38.24, 0.9614), 3: (34.71, 0.9296), 4: (32.47, 0.8990)},
        "Set14": {2: (34.01, 0.9212), 3: (30.57, 0.8468), 4: (28.81, 0.7871)},
        "BSD100": {2: (32.34, 0.9017), 3: (29.26, 0.8093), 4: (27.72, 0.7419)},
        "Urban100": {2: (32.89, 0.9353), 3: (28.80, 0.8653), 4: (26.61, 0.8028)},
    },
)
