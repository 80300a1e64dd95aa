"""ESRGAN's generator (RRDBNet) and Real-ESRGAN's compact generator (SRVGGNetCompact).

RRDBNet: Wang et al., "ESRGAN: Enhanced Super-Resolution Generative Adversarial Networks",
ECCVW 2018, as in the official xinntao/ESRGAN and BasicSR code. Post-upsampling on [0, 1]
RGB: a head conv, 23 residual-in-residual dense blocks (64 features, growth 32, residual
scaling 0.2, no batch norm) and a conv inside a global skip, two nearest-neighbour x2 + conv +
LeakyReLU stages, a conv + LeakyReLU at HR size and an output conv. `rrdb` is the
PSNR-oriented network (L1 loss); `esrgan` is the same network for the GAN-trained weights
(perceptual + relativistic adversarial + L1 loss). The GAN model has no PSNR reference: the
paper reports perceptual quality for it (its PSNR is lower by design), and a PSNR target would
rank it against the wrong goal.

SRVGGNetCompact: released after the paper, in the code of Wang et al., "Real-ESRGAN: Training
Real-World Blind Super-Resolution with Pure Synthetic Data", ICCVW 2021 (xinntao/Real-ESRGAN
`srvgg_arch.py`; the paper itself describes only RRDBNet). A plain stack of 3x3
conv + PReLU at LR size (64 features, 16 body convs as the released realesr-animevideov3;
realesr-general-x4v3 has 32), one sub-pixel convolution to RGB, plus the nearest-neighbour
enlarged input. Real-ESRGAN trains it on synthetic real-world degradations; `srvgg` here is the
architecture, with a PSNR-oriented bicubic recipe small enough for a CPU. `srvgg-s` is the same
network at 8 convolutions of 32 features, sized for the two-stage perceptual-SR demo on a CPU
(docs/perceptual.md); it is not a released configuration. Deviation: `srvgg` starts from a He
initialisation (see `srvgg`); the released code keeps PyTorch's default.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial

from torch import nn

from superres.models.registry import ModelSpec
from superres.nn.blocks.residual import NearestSkip, ResidualGroup
from superres.nn.blocks.rrdb import RRDB as RRDBBlock
from superres.nn.frameworks import PostUpsampling
from superres.nn.layers import conv, conv_stack, init_msra, leaky_relu
from superres.nn.upsamplers import NearestConv, SubPixel, doublings

ESRGAN_PAPER = (
    "Wang, Yu, Wu, Gu, Liu, Dong, Qiao and Loy, ESRGAN: Enhanced Super-Resolution Generative "
    "Adversarial Networks, ECCVW 2018"
)


def rrdbnet(scale: int, blocks: int = 23, channels: int = 64, growth: int = 32) -> nn.Module:
    """RRDBNet with `blocks` RRDBs of `channels` features and dense growth `growth`."""
    trunk = ResidualGroup((RRDBBlock(channels, growth) for _ in range(blocks)), channels)
    upsampler = nn.Sequential(
        *(NearestConv(channels) for _ in range(doublings(scale))),
        conv(channels, channels, 3), leaky_relu(), conv(channels, 3, 3),
    )
    return PostUpsampling(nn.Sequential(conv(3, channels, 3), trunk), upsampler)


def srvgg(scale: int, convs: int = 16, channels: int = 64, he_init: bool = True) -> nn.Module:
    """SRVGGNetCompact with `convs` body convolutions of `channels` features (plus the first).

    `he_init`: He-normal convolutions and a near-zero output layer (std 1e-3), so training
    starts from the nearest-neighbour enlargement. Under PyTorch's default initialisation
    (the released code's) the signal shrinks about 2.5x per layer: at 17 layers the first
    layer's gradient is ~1e-8 and a bicubic-x4 run made no progress in 400 steps.
    """
    body = conv_stack([3] + [channels] * (convs + 1), [3] * (convs + 1), "prelu",
                      last_activation=True)
    network = PostUpsampling(body, SubPixel(channels, 3, scale))
    if he_init:
        init_msra(network, last_std=1e-3)
    return NearestSkip(network, scale)


RRDB = ModelSpec(
    name="rrdb",
    summary="RRDBNet (ESRGAN's generator), PSNR-oriented: 23 RRDBs, 64 features, growth 32, RGB",
    paper=ESRGAN_PAPER,
    scales=(4,),
    build=rrdbnet,
    color="rgb",
    framework="post-upsampling",
    reference={  # published_results.md: ESRGAN Table 2, RRDB trained on DF2K (DIV2K+Flickr2K)
        "Set5": {4: (32.73, 0.9011)},
        "Set14": {4: (28.99, 0.7917)},
        "BSD100": {4: (27.85, 0.7455)},
        "Urban100": {4: (27.03, 0.8153)},
    },
)

ESRGAN = ModelSpec(
    name="esrgan",
    summary="ESRGAN: RRDBNet trained with perceptual, relativistic GAN and L1 losses, RGB",
    paper=ESRGAN_PAPER,
    scales=(4,),
    build=rrdbnet,
    color="rgb",
    framework="post-upsampling",
)

SRVGG = ModelSpec(
    name="srvgg",
    summary="SRVGGNetCompact (Real-ESRGAN): 16 conv-PReLU, 64 features, pixel shuffle, "
    "nearest skip, RGB",
    paper="Wang, Xie, Dong and Shan, Real-ESRGAN: Training Real-World Blind Super-Resolution "
    "with Pure Synthetic Data, ICCVW 2021 (the compact network is from its later code releases)",
    scales=(2, 3, 4),
    build=srvgg,
    color="rgb",
    framework="post-upsampling",
)

SRVGG_S = replace(
    SRVGG,
    name="srvgg-s",
    summary="SRVGGNetCompact at CPU-demo size (not a released configuration): 8 conv-PReLU, "
    "32 features, pixel shuffle, nearest skip, RGB",
    # PyTorch's default initialisation, as the demo in docs/perceptual.md was measured with
    # (at 9 layers it trains: Set5 30.82 dB after its 6,000 steps)
    build=partial(srvgg, convs=8, channels=32, he_init=False),
)

PHOTO = replace(
    SRVGG,
    name="photo",
    summary="The photo model: SRVGGNetCompact with 12 conv-PReLU, 48 features, trained on "
    "realistic degradations (blur, resize, noise, JPEG) for real photos, RGB",
    # Between the released 16x64 network (1.7 output MP/s at x4 on 2 CPU threads) and the
    # 8x32 demo: about 4x cheaper than the release to train and to run.
    build=partial(srvgg, convs=12, channels=48),
    reference={},
)
