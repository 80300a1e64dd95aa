"""The ESRGAN family's blocks: ESRGAN's residual dense block and residual-in-residual dense
block (RRDB). Its upsampling stage is `superres.nn.upsamplers.NearestConv`."""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from superres.nn.blocks.dense import DenseLayer
from superres.nn.blocks.residual import Residual
from superres.nn.layers import conv, leaky_relu


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
