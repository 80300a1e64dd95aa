"""The hourglass (Newell, Yang and Deng, "Stacked Hourglass Networks for Human Pose
Estimation", ECCV 2016): features pooled down to a coarse grid and brought back up, with a skip
branch at every resolution, so one pass sees the whole face and still places points to the
pixel. FSRNet's prior estimation branch stacks two of them to predict landmark heatmaps."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from superres.nn.blocks.residual import ResidualBlock


def _blocks(channels: int, count: int) -> nn.Sequential:
    return nn.Sequential(*(ResidualBlock(channels) for _ in range(count)))


class Hourglass(nn.Module):
    """`depth` halvings of the grid (the input's sides must be multiples of 2**depth), with
    `blocks` residual blocks on the skip branch and on each side of every halving; the output
    is the skip branch plus the nearest-neighbour upsampled coarse branch."""

    def __init__(self, channels: int, depth: int, blocks: int = 1) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"an hourglass halves its grid at least once, not {depth} times")
        self.depth = depth
        self.skip = _blocks(channels, blocks)
        self.down = _blocks(channels, blocks)
        self.inner: nn.Module = (Hourglass(channels, depth - 1, blocks) if depth > 1
                                 else _blocks(channels, blocks))
        self.up = _blocks(channels, blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        coarse = self.up(self.inner(self.down(F.max_pool2d(x, 2))))
        return self.skip(x) + F.interpolate(coarse, scale_factor=2, mode="nearest")
