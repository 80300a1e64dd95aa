"""FSRCNN: Dong, Loy and Tang, "Accelerating the Super-Resolution Convolutional Neural
Network", ECCV 2016. Post-upsampling: feature extraction 5x5 (d), shrinking 1x1 (s),
m mapping layers 3x3 (s), expanding 1x1 (d), PReLU, and a 9x9 transposed convolution.

The reference numbers are for training on 91 images + General-100; trained on the 91 images
only, the paper's model gives 36.94 / 33.06 / 30.55 dB on Set5 x2/x3/x4 (as quoted by the
yjn870 FSRCNN port). Initialisation as the paper: He-normal convolutions, deconvolution
Gaussian with std 0.001. The deconvolution is padded so the output is exactly scale x the
input. `padding_mode="replicate"` runs the network as the authors' MATLAB test code does, which
their released weights are loaded with (`superres.models.convert.matlab`): every convolution
repeats the edge pixels (imfilter 'replicate') and the deconvolution sees its input with one
replicated pixel on each side (their deconv.m). Their x3 models also place the deconvolution's
output one HR pixel earlier (`deconv_crop=3`, where the centred kernel crops 4): measured on
Set5, 33.17 dB against 26.33 with 4 (a copy of their release evaluates x3 with a shave shifted
by one pixel, shave_x3.m, for the same reason); their x2 and x4 models are centred."""

from __future__ import annotations

from functools import partial

from torch import nn

from superres.models.registry import ModelSpec
from superres.nn.frameworks import PostUpsampling
from superres.nn.layers import PaddingMode, conv_stack, init_msra
from superres.nn.upsamplers import TransposedConv

PAPER = (
    "Dong, Loy and Tang, Accelerating the Super-Resolution Convolutional Neural Network, "
    "ECCV 2016"
)


def fsrcnn(
    scale: int, d: int = 56, s: int = 12, m: int = 4, padding_mode: PaddingMode = "zeros",
    deconv_crop: int | None = None,
) -> nn.Module:
    """FSRCNN(d, s, m); the deconvolution is the only scale-specific layer. `deconv_crop`
    aligns it (None: centred; TensorFlow's 'SAME' crops (9 - scale) // 2, as the FSRCNN graphs
    of OpenCV's dnn_superres do)."""
    channels = [1, d, s, *([s] * m), d]
    kernels = [5, 1, *([3] * m), 1]
    body = conv_stack(channels, kernels, "prelu", last_activation=True, padding_mode=padding_mode)
    border = 1 if padding_mode == "replicate" else 0
    upsampler = TransposedConv(d, 1, scale, kernel=9, crop=deconv_crop, border=border)
    return init_msra(PostUpsampling(body, upsampler), last_std=1e-3)


FSRCNN = ModelSpec(
    name="fsrcnn",
    summary="FSRCNN (d=56, s=12, m=4), PReLU, 9x9 deconvolution, Y channel",
    paper=PAPER,
    scales=(2, 3, 4),
    build=fsrcnn,
    color="y",
    framework="post-upsampling",
    reference={  # trained on 91 images + General-100 (LapSRN/IMDN comparison tables)
        "Set5": {2: (37.00, 0.9558), 3: (33.18, 0.9140), 4: (30.72, 0.8660)},
        "Set14": {2: (32.63, 0.9088), 4: (27.61, 0.7550)},
        "BSD100": {2: (31.53, 0.8920), 4: (26.98, 0.7150)},
    },
)

FSRCNN_S = ModelSpec(
    name="fsrcnn-s",
    summary="FSRCNN-s (d=32, s=5, m=1), the small real-time variant, Y channel",
    paper=PAPER,
    scales=(2, 3, 4),
    build=partial(fsrcnn, d=32, s=5, m=1),
    color="y",
    framework="post-upsampling",
)
