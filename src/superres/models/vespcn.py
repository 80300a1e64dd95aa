"""VESPCN: Caballero et al., "Real-Time Video Super-Resolution with Spatio-Temporal Networks
and Motion Compensation", CVPR 2017. The survey's video branch with explicit motion
compensation: a coarse-to-fine spatial-transformer flow network warps frames t-1 and t+1
onto t, the three aligned frames are fused early (stacked as the first layer's channels)
and an ESPCN-style network ends in a sub-pixel convolution; Y channel.

Trained on the SR error plus the motion-compensation loss: beta * MSE(warped neighbour,
frame t) + lambda * Huber(flow gradients) per neighbour (`training_loss`).

Input: N x T x H x W, the Y channels of a window of T = 3 frames (centre t), or N x 1 x H x W,
one frame, treated as a video of one frame whose neighbours are itself (the edge rule of
`superres.inference.temporal`), so the model also upscales still images.

Faithful to the paper: the motion-compensation network's layers (coarse flow: 5x5/2, 3x3,
5x5/2, 3x3 with 24 filters, 3x3 to 32 and tanh, x4 pixel shuffle; fine flow: 5x5/2, three
3x3 with 24 filters, 3x3 to 8 and tanh, x2 pixel shuffle, fed the frames, the coarse flow and
the coarse-warped neighbour), early fusion, the sub-pixel output and the loss terms. Ours:
the tanh outputs are scaled to +-8 LR pixels of flow (a flow in pixels; the paper's scaling
is not reproduced here), and beta = 1, lambda = 0.01 weigh the warped-frame MSE and the Huber
smoothness (epsilon = 0.01; a recipe's `model_loss` sets them); the first stage (`video_x4`)
ran with beta = 0.01, under which the flow network barely aligned the frames (docs/video.md).

CPU sizing: the SR network has 6 ReLU convolutions (5x5 then 3x3; 64 filters, the last 32)
and a 3x3 sub-pixel convolution, its depth chosen for the CPU (the paper's SR networks were
not checked against it layer by layer), and it adds the bicubic upsampling of frame t to its
output (global residual learning), which the paper's network does not, so that it trains in
hours on a 2-core CPU. Trained on clips synthesised from still images (`video_x4`), not on
CDVL video as in the paper: docs/video.md gives the measured Vid4 numbers beside bicubic,
FSRCNN and ESPCN, and what the training data costs.
Vid4 is scored with no border shaved, all frames (docs/video.md).

`vespcn-deep` and `vespcn-5-deep` add 8 residual blocks (EDSR's, 32 filters) between the SR
body and the sub-pixel layer, each starting as the identity, so that they train on from the
shallower networks' weights: with frame t repeated, those score what FSRCNN scores, so their
single-frame part is what holds them back. The blocks are ours; the paper's networks are
plain convolution stacks.
"""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from superres.models.registry import ModelSpec
from superres.nn.alignment import CoarseToFineFlow, flow_smoothness, flow_warp
from superres.nn.blocks.residual import ResidualBlock
from superres.nn.layers import conv_stack
from superres.nn.supervision import LossFn, MultiSupervised
from superres.nn.upsamplers import Interpolate, SubPixel

FRAMES = 3


class VESPCN(MultiSupervised):
    """Motion compensation, early fusion of `frames` aligned frames, sub-pixel SR."""

    # The flow network sees far; tiles of a still image get a deep model's context.
    tile_context = (32, 4)
    # Motion-compensation loss weights: beta ("motion") on the warped frames' MSE, lambda
    # ("smoothness") on the flow's Huber smoothness (the paper's loss, section 3.3; the values
    # are ours, see the card). With beta = 0.01 (video_x4's `model_loss`) the flow network
    # hardly learned to align (docs/video.md); 1 makes it.
    loss_weights: ClassVar[dict[str, float]] = {"motion": 1.0, "smoothness": 0.01}

    def __init__(self, scale: int, frames: int = FRAMES, features: int = 64,
                 depth: int = 6, residual: bool = True, blocks: int = 0) -> None:
        super().__init__()
        if frames < 3 or frames % 2 == 0:
            raise ValueError(f"a temporal window has an odd number of frames >= 3, not {frames}")
        self.frames, self.scale = frames, scale
        self.motion = CoarseToFineFlow(channels=1)
        widths = [frames, *([features] * (depth - 1)), features // 2]
        self.body = conv_stack(widths, [5] + [3] * (depth - 1), "relu", last_activation=True)
        # Residual blocks after the body, each starting as the identity (its second
        # convolution zero), so a deeper network can start from a trained shallower one's
        # weights and output exactly what it did (network morphism, Chen et al. 2016).
        self.refine = nn.Sequential(*(ResidualBlock(features // 2) for _ in range(blocks)))
        with torch.no_grad():
            for block in self.refine:
                block.body[-1].weight.zero_()
                block.body[-1].bias.zero_()
        self.upsampler = SubPixel(features // 2, 1, scale, kernel=3)
        self.bicubic = Interpolate(scale) if residual else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x)[0]

    def _run(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor],
                                             list[torch.Tensor]]:
        """(SR of the centre frame, the warped neighbours, their flows)."""
        if x.ndim != 4 or x.shape[1] not in (1, self.frames):
            raise ValueError(f"VESPCN takes N x {self.frames} x H x W frames (or one frame, "
                             f"N x 1 x H x W), got {tuple(x.shape)}")
        if x.shape[1] == 1:
            x = x.expand(-1, self.frames, -1, -1)
        height, width = x.shape[-2:]
        # the coarse flow works at 1/4 size: pad to a multiple of 4 by repeating the edge
        padded = F.pad(x, (0, -width % 4, 0, -height % 4), mode="replicate")
        centre_index = self.frames // 2
        centre = padded[:, centre_index : centre_index + 1]
        aligned, warped, flows = [], [], []
        for i in range(self.frames):
            if i == centre_index:
                aligned.append(centre)
                continue
            neighbour = padded[:, i : i + 1]
            flow = self.motion(centre, neighbour)
            frame = flow_warp(neighbour, flow)
            aligned.append(frame)
            warped.append(frame[..., :height, :width])
            flows.append(flow)
        fused = torch.cat(aligned, 1)[..., :height, :width]
        sr = self.upsampler(self.refine(self.body(fused)))
        if self.bicubic is not None:
            sr = sr + self.bicubic(x[:, centre_index : centre_index + 1])
        return sr, warped, flows

    def training_loss(self, lr: torch.Tensor, hr: torch.Tensor, loss_fn: LossFn,
                      step: int, *targets: torch.Tensor) -> torch.Tensor:
        """SR loss + the motion-compensation loss of each neighbour: how far its warp is from
        the centre frame, and how rough its flow is."""
        sr, warped, flows = self._run(lr)
        centre = lr[:, self.frames // 2 : self.frames // 2 + 1]
        loss = loss_fn(sr, hr)
        for frame, flow in zip(warped, flows, strict=True):
            loss = loss + self.loss_weights["motion"] * F.mse_loss(frame, centre)
            loss = loss + self.loss_weights["smoothness"] * flow_smoothness(flow)
        return loss


def vespcn(scale: int, **options: int | bool) -> VESPCN:
    """The registered VESPCN: 3 frames, 6 SR convolutions of 64 filters, global residual."""
    return VESPCN(scale, **options)


def vespcn_5(scale: int, **options: int | bool) -> VESPCN:
    """VESPCN over 5 frames: four neighbours aligned by the same flow network, fused early."""
    return VESPCN(scale, frames=5, **options)


DEEP_BLOCKS = 8


def vespcn_deep(scale: int, **options: int | bool) -> VESPCN:
    """VESPCN with 8 residual blocks after its SR body (16 more 3x3 convolutions)."""
    return VESPCN(scale, blocks=DEEP_BLOCKS, **options)


def vespcn_5_deep(scale: int, **options: int | bool) -> VESPCN:
    """vespcn-5 with 8 residual blocks after its SR body."""
    return VESPCN(scale, frames=5, blocks=DEEP_BLOCKS, **options)


VESPCN_SPEC = ModelSpec(
    name="vespcn",
    summary="VESPCN: coarse-to-fine flow motion compensation of frames t-1, t+1, early "
    "fusion, sub-pixel SR (CPU-sized), Y channel, 3-frame window",
    paper="Caballero et al., Real-Time Video Super-Resolution with Spatio-Temporal Networks "
    "and Motion Compensation, CVPR 2017",
    scales=(2, 3, 4),
    build=vespcn,
    color="y",
    framework="post-upsampling",
    frames=FRAMES,
    reference={  # Vid4 x4, Y channel, from the BasicVSR paper's comparison table (BI)
        "Vid4": {4: (25.35, 0.7557)},
    },
)

# Early fusion over a wider window, frames t-2..t+2, each neighbour warped onto t by the one
# shared flow network. Early fusion takes any window of consecutive frames; that the paper
# reports a 5-frame motion-compensated model was not checked here (docs/video.md).
VESPCN_5_SPEC = replace(
    VESPCN_SPEC,
    name="vespcn-5",
    summary="VESPCN over a 5-frame window: frames t-2..t+2 motion-compensated onto t, early "
    "fusion, sub-pixel SR (CPU-sized), Y channel",
    build=vespcn_5,
    frames=5,
    reference={},
)

VESPCN_DEEP_SPEC = replace(
    VESPCN_SPEC,
    name="vespcn-deep",
    summary="VESPCN with a deeper SR network: 8 residual blocks (16 3x3 convolutions of 32 "
    "filters) after the body, 3-frame window, Y channel",
    build=vespcn_deep,
)

VESPCN_5_DEEP_SPEC = replace(
    VESPCN_5_SPEC,
    name="vespcn-5-deep",
    summary="vespcn-5 with a deeper SR network: 8 residual blocks after the body, frames "
    "t-2..t+2, Y channel",
    build=vespcn_5_deep,
)
