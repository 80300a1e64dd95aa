"""Dense connections: the dense layer and block, RDN's residual dense block and the fusion of
the outputs of many blocks; SRDenseNet's dense blocks and the dense skip connections between
them.

SRDenseNet's densely connected blocks and the dense skip connections between them.

Inside a block every 3x3 convolution sees the outputs of all earlier convolutions of the block,
each adding `growth` feature maps, so features are reused instead of recomputed. Between blocks,
the skip connections decide which features reach the reconstruction: only the last block's
(SRDenseNet_H), also the low-level ones (SRDenseNet_HL), or those of every block, each block
also taking all earlier ones as input (SRDenseNet_All).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Literal

import torch
from torch import nn

from superres.nn.blocks.residual import Residual
from superres.nn.layers import conv


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


def residual_dense_trunk(blocks: int, layers: int, growth: int, channels: int) -> Residual:
    """RDN's trunk: a 3x3 conv, then `blocks` residual dense blocks (C = `layers`, G =
    `growth`, G0 = `channels`) whose outputs are all fused (1x1 then 3x3: global feature
    fusion), inside the global residual from the trunk's input (the first shallow features)."""
    fusion = nn.Sequential(conv(blocks * channels, channels, 1), conv(channels, channels, 3))
    dense_blocks = (ResidualDenseBlock(channels, growth, layers) for _ in range(blocks))
    return Residual(nn.Sequential(conv(channels, channels, 3), FeatureFusion(dense_blocks, fusion)))


DenseSkip = Literal["h", "hl", "all"]


class SRDenseBlock(nn.Module):
    """`layers` 3x3 conv + ReLU; layer 1 sees the block input, layer l the outputs of layers
    1..l-1 (Tong et al.'s X_l = max(0, w_l * [X_1, ..., X_{l-1}] + b_l)); the block outputs
    the concatenation of all its layers, `growth * layers` maps."""

    def __init__(self, in_channels: int, growth: int, layers: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            nn.Sequential(conv(in_channels if i == 0 else growth * i, growth, 3), nn.ReLU())
            for i in range(layers)
        )
        self.out_channels = growth * layers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = [self.layers[0](x)]
        for layer in self.layers[1:]:
            outputs.append(layer(torch.cat(outputs, dim=1)))
        return torch.cat(outputs, dim=1)


class DenseSkipBlocks(nn.Module):
    """`blocks` dense blocks on low-level features, joined by the chosen skip connections;
    returns the features for the bottleneck (`out_channels` maps)."""

    def __init__(
        self, in_channels: int, growth: int, layers: int, blocks: int, skip: DenseSkip
    ) -> None:
        super().__init__()
        if skip not in ("h", "hl", "all"):
            raise ValueError(f"unknown dense skip {skip!r}; choose h, hl or all")
        width = growth * layers
        if skip != "all" and in_channels != width:
            raise ValueError(f"chained blocks need {width} low-level maps, got {in_channels}")
        self.skip = skip
        self.blocks = nn.ModuleList(
            SRDenseBlock(in_channels + width * i if skip == "all" else width, growth, layers)
            for i in range(blocks)
        )
        self.out_channels = {"h": width, "hl": in_channels + width,
                             "all": in_channels + width * blocks}[skip]

    def forward(self, low: torch.Tensor) -> torch.Tensor:
        features = [low]
        for block in self.blocks:
            features.append(block(torch.cat(features, dim=1) if self.skip == "all" else
                                  features[-1]))
        if self.skip == "h":
            return features[-1]
        return torch.cat(features if self.skip == "all" else [low, features[-1]], dim=1)
