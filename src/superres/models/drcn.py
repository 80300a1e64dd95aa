"""DRCN: Kim, Lee and Lee, "Deeply-Recursive Convolutional Network for Image Super-Resolution",
CVPR 2016. Bicubic pre-upsampling; an embedding net (two 3x3 convolutions, 256 filters), an
inference net that is ONE 3x3 256-filter convolution applied 16 times with shared weights, and
a two-layer reconstruction net applied to every recursion, with a skip connection from the
interpolated input; the output is a learned weighted average of the 16 predictions. Y channel.

Training (recursive supervision): loss = alpha * mean_d loss(prediction_d, hr)
+ (1 - alpha) * loss(output, hr); the paper's beta * ||W||^2 is the optimiser's weight decay.
The paper only says alpha starts high, which keeps the early recursions stable, and decays to
favour the final output. We take Jin Yamanaka's TensorFlow port's schedule: alpha = 1 at step
0, decaying linearly to 0 by epoch 25, i.e. `alpha_steps` = 25 x 147 = 3,675 steps (an epoch
is the paper's 9,382 41x41 patches of T91, stride 21, in batches of 64).
"""

from __future__ import annotations

import torch
from torch import nn

from superres.models.registry import ModelSpec
from superres.nn.blocks.recursive import Recursive, SupervisedRecursion
from superres.nn.frameworks import PreUpsampling
from superres.nn.layers import conv, conv_stack, init_msra
from superres.nn.supervision import LossFn, MultiSupervised


class DeeplyRecursive(PreUpsampling, MultiSupervised):
    """Pre-upsampling around a `SupervisedRecursion`, trained with recursive supervision."""

    def __init__(self, body: SupervisedRecursion, scale: int, alpha_steps: int) -> None:
        super().__init__(body, scale)
        self.alpha_steps = alpha_steps

    def alpha(self, step: int) -> float:
        """Weight of the intermediate predictions' loss at training step `step`."""
        return max(0.0, 1.0 - step / self.alpha_steps)

    def training_loss(
        self, lr: torch.Tensor, hr: torch.Tensor, loss_fn: LossFn, step: int
    ) -> torch.Tensor:
        predictions, output = self.body.predictions(self.upsample_input(lr))
        intermediate = torch.stack([loss_fn(p, hr) for p in predictions]).mean()
        alpha = self.alpha(step)
        return alpha * intermediate + (1 - alpha) * loss_fn(output, hr)


def drcn(
    scale: int, channels: int = 256, recursions: int = 16, alpha_steps: int = 3_675
) -> DeeplyRecursive:
    """DRCN with `recursions` applications of one `channels`-filter convolution."""
    embed = init_msra(conv_stack([1, channels, channels], [3, 3], "relu", last_activation=True))
    reconstruct = init_msra(conv_stack([channels, channels, 1], [3, 3], "relu"))
    unit = nn.Sequential(conv(channels, channels, 3), nn.ReLU())
    with torch.no_grad():  # the paper: zero except the self-connections (an identity start)
        unit[0].weight.zero_()
        unit[0].weight[:, :, 1, 1].fill_diagonal_(1.0)
        unit[0].bias.zero_()
    body = SupervisedRecursion(embed, Recursive(unit, recursions), reconstruct)
    return DeeplyRecursive(body, scale, alpha_steps)


DRCN = ModelSpec(
    name="drcn",
    summary="DRCN, 16 recursions of one 3x3x256 conv, recursive supervision, skip connection, "
    "bicubic pre-upsampling, Y channel",
    paper="Kim, Lee and Lee, Deeply-Recursive Convolutional Network for Image Super-Resolution, "
    "CVPR 2016",
    scales=(2, 3, 4),
    build=drcn,
    color="y",
    framework="pre-upsampling",
    reference={  # 91 images
        "Set5": {2: (37.63, 0.9588), 3: (33.82, 0.9226), 4: (31.53, 0.8854)},
        "Set14": {2: (33.04, 0.9118), 4: (28.02, 0.7670)},
        "BSD100": {2: (31.85, 0.8942), 4: (27.23, 0.7233)},
        "Urban100": {2: (30.75, 0.9133), 4: (25.14, 0.7510)},
    },
)
