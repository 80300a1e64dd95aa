"""LapSRN: Lai, Huang, Ahuja and Yang, "Deep Laplacian Pyramid Networks for Fast and Accurate
Super-Resolution", CVPR 2017, and MS-LapSRN, "Fast and Accurate Image Super-Resolution with Deep
Laplacian Pyramid Networks", TPAMI 2018. Progressive framework on the Y channel: each x2 level
has a feature branch (3x3 convolutions, 64 filters, LeakyReLU 0.2, then a x2 transposed
convolution) whose features predict the level's band with a 3x3 convolution, and an image branch
(a 4x4 transposed convolution starting as bilinear) that the band is added to. Every level is
supervised (Charbonnier in the papers) through `LaplacianPyramid.training_loss`.

LapSRN has its own d = 10 layers per level. MS-LapSRN shares one level across all levels (so one
model serves x2, x4 and x8) and builds it from a recursive block: D pre-activation convolutions
applied R times with shared weights and a shared-source skip connection; D5R8 is its main model.
As in the authors' MatConvNet code, the feature upsampler is a 3x3 transposed convolution (their
init_LapSRN_model.m / init_MSLapSRN_model.m use the conv size f = 3 for it; the papers' text
says 4x4). That gives 812,768 (LapSRN x4) and 222,352 (MS-LapSRN) weights, the 812K and 222K
we recall from the TPAMI comparison table (recalled, not checked against the paper here).
Their DagNN crops that transposed convolution's full output by [0 1 0 1] (output row 2i + a
from input row i and kernel row a), superres's by one row on each side (2i + a - 1, the kernel
centred): `upconv_crop=0` is the authors' alignment, which their released weights are loaded
with (`superres.models.convert.matlab`); with 1 they are off by one HR pixel.

Initialisation as in init_LapSRN_model.m and init_MSLapSRN_model.m: the input convolution
N(0, 0.001^2), every other convolution He over the fan-in (their sqrt(2 / (f f n)), n = 64
input maps), zero biases, the image branch bilinear. (The 64 -> 1 band convolution used He
over the fan-out before: 8 times the authors' std.) One deviation, in MS-LapSRN only: the last
convolution of the recursive block starts at `RECURSION_SCALE` = 0.1 times He. The block runs
recursions x levels times with the same weights (24 at x8), so its gain compounds: with He
alone it amplified (gain per recursion above 1) for 58% of seeds, up to 1.8, and 12 of 50
seeds started the x8 output at a std above 1, up to 5,770. Scaled, the gain is at most 0.18
and every seed starts at the bilinear image plus a small band.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from superres.models.registry import ModelSpec
from superres.nn.blocks.recursive import Recursive
from superres.nn.frameworks import LaplacianPyramid, PyramidLevel, pyramid_levels
from superres.nn.layers import conv, init_msra
from superres.nn.upsamplers import BilinearUpsampler, TransposedConv

# MS-LapSRN's recursive block is applied recursions x levels times with the same weights; its
# last convolution starts at this fraction of He so that repeating it cannot amplify.
RECURSION_SCALE = 0.1

PAPER = (
    "Lai, Huang, Ahuja and Yang, Deep Laplacian Pyramid Networks for Fast and Accurate "
    "Super-Resolution, CVPR 2017"
)


def _level(features: nn.Module, channels: int) -> PyramidLevel:
    """A pyramid level around a feature branch; the band is predicted by a 3x3 convolution."""
    return PyramidLevel(init_msra(features, mode="fan_in"),
                        init_msra(conv(channels, 1, 3), mode="fan_in"), BilinearUpsampler())


def _embed(channels: int, *activation: nn.Module) -> nn.Sequential:
    """The input convolution, initialised with std 0.001 as in the authors' code."""
    return init_msra(nn.Sequential(conv(1, channels, 3), *activation), last_std=1e-3)


def lapsrn(
    scale: int, depth: int = 10, channels: int = 64, upconv_crop: int = 1,
    upconv_kernel: int = 3, design: Literal["paper", "tf-lapsrn"] = "paper",
) -> LaplacianPyramid:
    """CVPR LapSRN: log2(scale) levels with their own weights, `depth` conv layers each (the
    authors' x8 release has 5); `upconv_crop` aligns the feature upsampler (module docstring),
    `upconv_kernel` 4 is the papers' text (twtygqyy/pytorch-LapSRN builds it so). The design
    "tf-lapsrn" is OpenCV's LapSRN instead (`tf_lapsrn`)."""
    if design == "tf-lapsrn":
        return tf_lapsrn(scale, depth, channels)

    def features() -> nn.Sequential:
        layers = [m for _ in range(depth) for m in (conv(channels, channels, 3), nn.LeakyReLU(0.2))]
        upconv = TransposedConv(channels, channels, 2, kernel=upconv_kernel, crop=upconv_crop)
        return nn.Sequential(*layers, upconv, nn.LeakyReLU(0.2))

    levels = [_level(features(), channels) for _ in range(pyramid_levels(scale))]
    return LaplacianPyramid(_embed(channels, nn.LeakyReLU(0.2)), levels, scale)


class ActivatedLevel(PyramidLevel):
    """A pyramid level whose SR image passes through LeakyReLU(0.2), as TF-LapSRN's does."""

    def forward(
        self, features: torch.Tensor, image: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        features, image = super().forward(features, image)
        return features, F.leaky_relu(image, 0.2)


def _tf_shuffle(in_channels: int) -> nn.Sequential:
    """TF-LapSRN's x2 upsampler: a 4x4 convolution without bias to 4 phases, padded as
    TensorFlow's 'SAME' pads an even kernel (1 before, 2 after), then a pixel shuffle."""
    return nn.Sequential(nn.ZeroPad2d((1, 2, 1, 2)), nn.Conv2d(in_channels, 4, 4, bias=False),
                         nn.PixelShuffle(2))


def tf_lapsrn(scale: int, depth: int = 10, channels: int = 64) -> LaplacianPyramid:
    """fannymonori/TF-LapSRN's network, which OpenCV's dnn_superres ships as LapSRN_x2/x4/x8.pb
    (its LapSRN.py at commit b2a65e0): not the paper's. Each level reads the previous level's
    one-channel feature map (the LR image at the first), applies `depth` 3x3 convolutions with
    LeakyReLU(0.2) and upsamples them to one channel (`_tf_shuffle`, then LeakyReLU); the image
    branch is a `_tf_shuffle` too, and the level's output is LeakyReLU(image + features)."""

    def level() -> ActivatedLevel:
        layers: list[nn.Module] = [conv(1, channels, 3), nn.LeakyReLU(0.2)]
        for _ in range(depth - 1):
            layers += [conv(channels, channels, 3), nn.LeakyReLU(0.2)]
        features = nn.Sequential(*layers, _tf_shuffle(channels), nn.LeakyReLU(0.2))
        return ActivatedLevel(features, nn.Identity(), _tf_shuffle(1))

    levels = [level() for _ in range(pyramid_levels(scale))]
    return LaplacianPyramid(nn.Identity(), levels, scale)


def ms_lapsrn(scale: int, depth: int = 5, recursions: int = 8, channels: int = 64,
              upconv_crop: int = 1) -> LaplacianPyramid:
    """MS-LapSRN-D{depth}R{recursions}: one level shared by all levels, whatever the scale;
    `upconv_crop` aligns the feature upsampler (module docstring)."""
    block = nn.Sequential(
        *[m for _ in range(depth) for m in (nn.LeakyReLU(0.2), conv(channels, channels, 3))]
    )
    features = nn.Sequential(
        Recursive(block, recursions, shared_source=True),
        nn.LeakyReLU(0.2),
        TransposedConv(channels, channels, 2, kernel=3, crop=upconv_crop),
    )
    level = _level(features, channels)
    with torch.no_grad():  # after He: the recursion must start contractive (module docstring)
        block[-1].weight.mul_(RECURSION_SCALE)
    return LaplacianPyramid(_embed(channels), [level], scale)


LAPSRN = ModelSpec(
    name="lapsrn",
    summary="LapSRN (CVPR 2017), d=10 conv layers per x2 level, own weights per level, "
    "progressive upsampling, Y channel",
    paper=PAPER,
    scales=(2, 4, 8),
    build=lapsrn,
    color="y",
    framework="progressive",
    reference={  # 291 images; x8 Set5 and Manga109 values are recalled (†) in the table
        "Set5": {2: (37.52, 0.9591), 4: (31.54, 0.8852), 8: (26.15, 0.7380)},
        "Set14": {2: (32.99, 0.9124), 4: (28.09, 0.7700)},
        "BSD100": {2: (31.80, 0.8952), 4: (27.32, 0.7275)},
        "Urban100": {2: (30.41, 0.9103), 4: (25.21, 0.7562)},
        "Manga109": {2: (37.27, 0.9740), 4: (29.09, 0.8900)},
    },
)

MS_LAPSRN = ModelSpec(
    name="ms-lapsrn",
    summary="MS-LapSRN-D5R8 (TPAMI 2018): one recursive level (5 convs x 8 recursions) shared "
    "across levels and scales, progressive upsampling, Y channel",
    paper="Lai, Huang, Ahuja and Yang, Fast and Accurate Image Super-Resolution with Deep "
    "Laplacian Pyramid Networks, TPAMI 2018",
    scales=(2, 4, 8),
    build=ms_lapsrn,
    color="y",
    framework="progressive",
)
