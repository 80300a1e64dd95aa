"""ESPCN: Shi et al., "Real-Time Single Image and Video Super-Resolution Using an Efficient
Sub-Pixel Convolutional Neural Network", CVPR 2016. Post-upsampling: 5x5 (64), 3x3 (32),
tanh, then a 3x3 sub-pixel convolution to scale^2 channels and pixel shuffle, Y channel.

The reference numbers are for ImageNet training; trained on the 91 images the paper gives
32.55 dB on Set5 x3 (as quoted by the yjn870 ESPCN port). Convolutions are zero-padded so
the output is exactly scale x the input."""

from __future__ import annotations

from torch import nn

from superres.models.registry import ModelSpec
from superres.nn.frameworks import PostUpsampling
from superres.nn.layers import conv_stack
from superres.nn.upsamplers import SubPixel


def espcn(scale: int, n1: int = 64, n2: int = 32, activation: str = "tanh") -> nn.Module:
    """ESPCN (f1, n1) = (5, 64), (f2, n2) = (3, 32), f3 = 3; the paper's tanh, or the ReLU of
    fannymonori/TF-ESPCN (OpenCV's ESPCN graphs)."""
    body = conv_stack([1, n1, n2], [5, 3], activation, last_activation=True)
    return PostUpsampling(body, SubPixel(n2, 1, scale, kernel=3))


ESPCN = ModelSpec(
    name="espcn",
    summary="ESPCN 5-3-3 (64/32 filters), tanh, sub-pixel convolution, Y channel",
    paper="Shi et al., Real-Time Single Image and Video Super-Resolution Using an Efficient "
    "Sub-Pixel Convolutional Neural Network, CVPR 2016",
    scales=(2, 3, 4),
    build=espcn,
    color="y",
    framework="post-upsampling",
    reference={  # ImageNet-trained (ESPCN paper via the EDSR compilation)
        "Set5": {3: (33.13, None), 4: (30.90, None)},
        "Set14": {3: (29.49, None), 4: (27.73, None)},
    },
)
