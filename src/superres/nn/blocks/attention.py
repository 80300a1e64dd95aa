"""Channel attention (squeeze-and-excitation) and RCAN's blocks and groups built on it."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from superres.nn.blocks.residual import ResidualBlock, ResidualGroup


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation (Hu et al., CVPR 2018) as RCAN uses it: the global average of
    each channel, a 1x1 bottleneck of channels // reduction with ReLU, a 1x1 expansion and a
    sigmoid give one weight per channel, so the network can favour informative features."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.excite = nn.Sequential(
            nn.Conv2d(channels, channels // reduction, 1), nn.ReLU(inplace=True),
            nn.Conv2d(channels // reduction, channels, 1), nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.excite(F.adaptive_avg_pool2d(x, 1))


class RCAB(ResidualBlock):
    """RCAN's residual channel attention block: EDSR's residual block with channel attention
    at the end of its residual branch (no residual scaling, as in the official code)."""

    def __init__(self, channels: int, reduction: int = 16, kernel: int = 3) -> None:
        super().__init__(channels, 1.0, kernel, ChannelAttention(channels, reduction))


def residual_in_residual(
    groups: int, blocks: int, channels: int, reduction: int = 16
) -> ResidualGroup:
    """RCAN's trunk: `groups` residual groups of `blocks` RCABs (short skips), inside a long
    skip connection, so the low-frequency content bypasses the whole depth."""
    return ResidualGroup(
        (ResidualGroup((RCAB(channels, reduction) for _ in range(blocks)), channels)
         for _ in range(groups)),
        channels,
    )
