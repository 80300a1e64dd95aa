"""VDSR: Kim, Lee and Lee, "Accurate Image Super-Resolution Using Very Deep Convolutional
Networks", CVPR 2016. Bicubic pre-upsampling, then 20 3x3 convolutions (64 filters, ReLU) that
predict the residual added to the interpolated image (global residual learning), Y channel.

The network only ever sees the interpolated image, so it is scale-agnostic: one set of weights
serves x2, x3 and x4, trained on the three at once as in the paper (a recipe's `scales`).
"""

from __future__ import annotations

from torch import nn

from superres.models.registry import ModelSpec
from superres.nn.blocks.residual import Residual
from superres.nn.frameworks import PreUpsampling
from superres.nn.layers import conv_stack, init_msra


def vdsr(scale: int, depth: int = 20, channels: int = 64) -> nn.Module:
    """VDSR with `depth` 3x3 layers; receptive field 2 * depth + 1 (41 x 41 for 20 layers)."""
    body = conv_stack([1, *[channels] * (depth - 1), 1], [3] * depth, "relu")
    return PreUpsampling(Residual(init_msra(body)), scale)  # global residual learning


VDSR = ModelSpec(
    name="vdsr",
    summary="VDSR, 20 layers 3x3x64, ReLU, global residual, bicubic pre-upsampling (scale-"
    "agnostic network), Y channel",
    paper="Kim, Lee and Lee, Accurate Image Super-Resolution Using Very Deep Convolutional "
    "Networks, CVPR 2016",
    scales=(2, 3, 4),
    build=vdsr,
    color="y",
    framework="pre-upsampling",
    reference={  # 291 images; Manga109 values are recalled (†) in published_results.md
        "Set5": {2: (37.53, 0.9587), 3: (33.66, 0.9213), 4: (31.35, 0.8838)},
        "Set14": {2: (33.03, 0.9124), 3: (29.77, 0.8314), 4: (28.01, 0.7674)},
        "BSD100": {2: (31.90, 0.8960), 3: (28.82, 0.7976), 4: (27.29, 0.7251)},
        "Urban100": {2: (30.76, 0.9140), 3: (27.14, 0.8279), 4: (25.18, 0.7524)},
        "Manga109": {2: (37.22, 0.9750), 3: (32.01, 0.9340), 4: (28.83, 0.8870)},
    },
)
