"""The ESRGAN family's components: ESRGAN's residual dense block and residual-in-residual
dense block (RRDB), its nearest-neighbour upsampling stage, and Real-ESRGAN's global skip from
the nearest-neighbour enlarged input."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn
from torch.nn import functional as F

from superres.nn.dense import DenseLayer
from superres.nn.layers import conv
from superres.nn.residual import Residual


def leaky_relu() -> nn.LeakyReLU:
    """ESRGAN's activation everywhere: LeakyReLU with slope 0.2."""
    return nn.LeakyReLU(0.2, inplace=True)


class LeakyDenseLayer(DenseLayer):
    """A dense layer (conv whose output is appended to its input) with ESRGAN's LeakyReLU in
    place of RDN's ReLU."""

    def __init__(self, in_channels: int, growth: int) -> None:
        super().__init__(in_channels, growth)
        self.act = leaky_relu()


class ResidualDenseBlock5C(Residual):
    """ESRGAN's ResidualDenseBlock_5C: four dense conv-LeakyReLU layers of `growth` channels,
    a 3x3 conv fusing all of them back to `channels`, and a residual scaled by `res_scale`.

    It differs from RDN's block (`superres.nn.dense.ResidualDenseBlock`) in the activation,
    the 3x3 (not 1x1) fusion and the residual scaling, so only the dense layer is shared. The
    convolutions start at a tenth of He initialisation (BasicSR's `default_init_weights`),
    the "smaller initialisation" with which the ESRGAN paper trains deep networks without
    batch norm.
    """

    def __init__(self, channels: int = 64, growth: int = 32, res_scale: float = 0.2) -> None:
        dense = nn.Sequential(*(LeakyDenseLayer(channels + i * growth, growth) for i in range(4)))
        fusion = conv(channels + 4 * growth, channels, 3)
        super().__init__(nn.Sequential(OrderedDict(dense=dense, fusion=fusion)), res_scale)
        for layer in (*(d.conv for d in dense), fusion):
            nn.init.kaiming_normal_(layer.weight)
            layer.weight.data.mul_(0.1)
            nn.init.zeros_(layer.bias)


class RRDB(Residual):
    """Residual in residual dense block: three residual dense blocks inside another residual
    connection, both scaled by `res_scale` (0.2 in ESRGAN)."""

    def __init__(self, channels: int = 64, growth: int = 32, res_scale: float = 0.2) -> None:
        blocks = (ResidualDenseBlock5C(channels, growth, res_scale) for _ in range(3))
        super().__init__(nn.Sequential(*blocks), res_scale)


class NearestConv(nn.Sequential):
    """ESRGAN's upsampling stage: nearest-neighbour x`factor`, a 3x3 conv, LeakyReLU.

    `nn.Upsample` rather than `superres.nn.upsamplers.InterpolateConv`: MATLAB's nearest
    kernel gives the same pixels at integer factors, but this is the operation the official
    code runs and the fastest one on wide feature maps."""

    def __init__(self, channels: int, factor: int = 2) -> None:
        super().__init__(nn.Upsample(scale_factor=factor, mode="nearest"),
                         conv(channels, channels, 3), leaky_relu())


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
