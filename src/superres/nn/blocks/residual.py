"""Residual learning: the skip connection around any body, EDSR's residual block and group
(RCAN's residual-in-residual is a group of groups), and Real-ESRGAN's global skip from the
nearest-neighbour enlarged input."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from torch.nn import functional as F

from superres.nn.layers import conv


class Residual(nn.Module):
    """x + scale * body(x): a skip connection around any body (local, group or global
    residual learning). A scale below 1 is EDSR's residual scaling, which keeps very wide
    networks stable in training."""

    def __init__(self, body: nn.Module, scale: float = 1.0) -> None:
        super().__init__()
        self.body = body
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return x + (out if self.scale == 1 else out * self.scale)

    def extra_repr(self) -> str:
        return "" if self.scale == 1 else f"scale={self.scale}"


class ResidualBlock(Residual):
    """EDSR's residual block: conv-ReLU-conv without batch norm (which EDSR removed: it
    normalises away the range flexibility SR needs), optionally followed on the residual
    branch by `attention` (RCAN's channel attention)."""

    def __init__(
        self, channels: int, res_scale: float = 1.0, kernel: int = 3,
        attention: nn.Module | None = None,
    ) -> None:
        layers = [conv(channels, channels, kernel), nn.ReLU(inplace=True),
                  conv(channels, channels, kernel)]
        if attention is not None:
            layers.append(attention)
        super().__init__(nn.Sequential(*layers), res_scale)


class ResidualGroup(Residual):
    """Blocks then a convolution, with a skip connection around both: EDSR's trunk and
    RCAN's residual group; a group of groups is RCAN's residual-in-residual structure."""

    def __init__(self, blocks: Iterable[nn.Module], channels: int, kernel: int = 3) -> None:
        super().__init__(nn.Sequential(*blocks, conv(channels, channels, kernel)))


class NearestSkip(nn.Module):
    """body(x) + x enlarged by nearest neighbour: Real-ESRGAN's compact network learns only
    the residual over a blocky copy of its input, which makes the small network converge
    fast."""

    def __init__(self, body: nn.Module, scale: int) -> None:
        super().__init__()
        self.body = body
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + F.interpolate(x, scale_factor=self.scale, mode="nearest")

    def extra_repr(self) -> str:
        return f"scale={self.scale}"
