"""Dense connections: the dense layer and block (SRDenseNet, RDN), RDN's residual dense
block, and the fusion of the outputs of many blocks."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

import torch
from torch import nn

from superres.nn.layers import conv
from superres.nn.residual import Residual


class DenseLayer(nn.Module):
    """conv-ReLU whose `growth` new channels are appended to its input, so every later layer
    sees every earlier feature map."""

    def __init__(self, in_channels: int, growth: int, kernel: int = 3) -> None:
        super().__init__()
        self.conv = conv(in_channels, growth, kernel)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.act(self.conv(x))], dim=1)


class DenseBlock(nn.Sequential):
    """`layers` dense layers: in_channels + layers * growth channels come out."""

    def __init__(self, in_channels: int, growth: int, layers: int, kernel: int = 3) -> None:
        super().__init__(*(
            DenseLayer(in_channels + i * growth, growth, kernel) for i in range(layers)
        ))
        self.out_channels = in_channels + layers * growth


class ResidualDenseBlock(Residual):
    """RDN's residual dense block: a dense block, local feature fusion (a 1x1 convolution
    back to `channels`, which bounds the width however many layers there are), and a local
    residual connection."""

    def __init__(self, channels: int, growth: int, layers: int) -> None:
        dense = DenseBlock(channels, growth, layers)
        super().__init__(nn.Sequential(OrderedDict(
            dense=dense, fusion=conv(dense.out_channels, channels, 1)
        )))


class FeatureFusion(nn.Module):
    """Blocks run in sequence and `fusion` applied to the concatenation of all their outputs
    (RDN's global feature fusion), so every block's features reach the output directly."""

    def __init__(self, blocks: Iterable[nn.Module], fusion: nn.Module) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.fusion = fusion

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = []
        for block in self.blocks:
            x = block(x)
            outputs.append(x)
        return self.fusion(torch.cat(outputs, dim=1))
