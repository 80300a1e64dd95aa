"""SRDenseNet: Tong, Li, Liu and Gao, "Image Super-Resolution Using Dense Skip Connections",
ICCV 2017. Post-upsampling, Y channel, x4: a 3x3 convolution to 128 low-level maps, 8 dense
blocks of 8 3x3 convolutions with growth rate 16 (128 maps out of each block), a 1x1 bottleneck
to 256 maps, two 3x3 stride-2 deconvolutions (256 filters) and a 3x3 reconstruction; ReLU
after every layer but the last. The three variants differ only in the skip connections that
feed the bottleneck (`superres.nn.blocks.dense.DenseSkipBlocks`): SRDenseNet_H (last block only),
SRDenseNet_HL (+ low-level features) and SRDenseNet_All (all blocks, each block also taking
every earlier block's output: the paper's full model).

Initialisation: He normal over the fan-in, std sqrt(2 / (input maps x kernel area)), zero
biases: Caffe's "msra" filler, the framework of the paper's time (the paper's own wording is
not checked here). He over the fan-out, used before, multiplies the activations' variance by
fan-in / fan-out wherever a layer narrows the maps (a dense layer reads up to 1,024 maps and
writes 16), so the untrained output's std was ~1e7 and the loss ~2e12 after 20 steps; now it
is at most 0.4 on a natural image (10 seeds per variant; `tests/test_initialisation.py`).
"""

from __future__ import annotations

from functools import partial

from torch import nn

from superres.models.registry import ModelSpec
from superres.nn.blocks.dense import DenseSkip, DenseSkipBlocks
from superres.nn.frameworks import PostUpsampling
from superres.nn.layers import conv, init_msra
from superres.nn.upsamplers import TransposedConv

PAPER = "Tong, Li, Liu and Gao, Image Super-Resolution Using Dense Skip Connections, ICCV 2017"


def srdensenet(
    scale: int,
    skip: DenseSkip = "all",
    growth: int = 16,
    layers: int = 8,
    blocks: int = 8,
    bottleneck: int = 256,
) -> nn.Module:
    """SRDenseNet with the given dense skip connections; x4 only, like the paper."""
    if scale != 4:
        raise ValueError(f"SRDenseNet is defined for x4 (two x2 deconvolutions), not x{scale}")
    low = growth * layers
    dense = DenseSkipBlocks(low, growth, layers, blocks, skip)
    body = nn.Sequential(conv(1, low, 3), nn.ReLU(), dense,
                         conv(dense.out_channels, bottleneck, 1), nn.ReLU())
    upsampler = nn.Sequential(
        TransposedConv(bottleneck, bottleneck, 2, kernel=3), nn.ReLU(),
        TransposedConv(bottleneck, bottleneck, 2, kernel=3), nn.ReLU(),
        conv(bottleneck, 1, 3),
    )
    return init_msra(PostUpsampling(body, upsampler), mode="fan_in")


def _spec(name: str, skip: DenseSkip, summary: str, **reference: dict) -> ModelSpec:
    return ModelSpec(
        name=name,
        summary=f"{summary}; 8 dense blocks x 8 layers, growth 16, 3x3 deconvolutions, Y channel",
        paper=PAPER,
        scales=(4,),
        build=partial(srdensenet, skip=skip),
        color="y",
        framework="post-upsampling",
        reference=reference,
    )


SRDENSENET_H = _spec("srdensenet-h", "h", "SRDenseNet_H: dense blocks only")
SRDENSENET_HL = _spec("srdensenet-hl", "hl", "SRDenseNet_HL: + low-level skip")
SRDENSENET = _spec(
    "srdensenet", "all", "SRDenseNet_All: dense skip connections at all levels",
    # all recalled (†) in published_results.md; trained on 50K ImageNet images
    Set5={4: (32.02, 0.8934)}, Set14={4: (28.50, 0.7782)}, BSD100={4: (27.53, 0.7337)},
    Urban100={4: (26.05, 0.7819)},
)
