"""SRCNN: Dong et al., "Image Super-Resolution Using Deep Convolutional Networks", TPAMI 2016
(ECCV 2014). Bicubic pre-upsampling, then patch extraction (f1 x f1, n1 = 64), non-linear
mapping (f2 x f2, n2 = 32) and reconstruction (f3 x f3), ReLU, on the Y channel.

Deviation: every convolution is zero-padded to keep the image size (the paper trains and
tests without padding, so its output loses (f1 + f2 + f3 - 3) / 2 pixels per side); the
evaluation protocol shaves only `scale` pixels, so the borders count here. The authors' MATLAB
test code repeats the edge pixels instead (imfilter 'replicate'): `padding_mode="replicate"`,
which their released weights are loaded with (`superres.models.convert.matlab`). The 9-1-5
model trained on 91 images reaches 32.39 dB on Set5 x3 in the ECCV 2014 paper (recalled)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from torch import nn

from superres.models.registry import ModelSpec
from superres.nn.frameworks import PreUpsampling
from superres.nn.layers import PaddingMode, conv_stack

PAPER = "Dong et al., Image Super-Resolution Using Deep Convolutional Networks, TPAMI 2016"


def srcnn(
    scale: int, kernels: Sequence[int] = (9, 5, 5), n1: int = 64, n2: int = 32,
    padding_mode: PaddingMode = "zeros",
) -> nn.Module:
    """SRCNN f1-f2-f3 with 'same' padding (the paper trains without padding; see the card)."""
    return PreUpsampling(conv_stack([1, n1, n2, 1], kernels, "relu", padding_mode=padding_mode),
                         scale)


SRCNN = ModelSpec(
    name="srcnn",
    summary="SRCNN 9-5-5 (64/32 filters), bicubic pre-upsampling, Y channel",
    paper=PAPER,
    scales=(2, 3, 4),
    build=srcnn,
    color="y",
    framework="pre-upsampling",
    reference={  # 9-5-5 trained on ImageNet (TPAMI 2016), as compiled by EDSR / ESRGAN tables
        "Set5": {2: (36.66, 0.9542), 3: (32.75, 0.9090), 4: (30.48, 0.8628)},
        "Set14": {2: (32.45, 0.9067), 3: (29.28, 0.8209), 4: (27.50, 0.7513)},
        "BSD100": {2: (31.36, 0.8879), 3: (28.41, 0.7863), 4: (26.90, 0.7101)},
    },
)

SRCNN_915 = ModelSpec(
    name="srcnn-915",
    summary="SRCNN 9-1-5 (64/32 filters), the ECCV 2014 base model, Y channel",
    paper=PAPER,
    scales=(2, 3, 4),
    build=partial(srcnn, kernels=(9, 1, 5)),
    color="y",
    framework="pre-upsampling",
    reference={"Set5": {3: (32.39, None)}},
)
