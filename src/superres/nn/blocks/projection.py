"""Iterative up- and down-projection units (DBPN): the iterative up-and-down framework.

An up-projection upsamples LR features, projects them back down, and corrects the HR estimate
with the upsampled back-projection error; a down-projection mirrors it. Stacking them
alternately lets every stage see the reconstruction error of the previous ones; in the dense
variant (D-DBPN) each unit takes the concatenation of all earlier units of the other kind.
"""

from __future__ import annotations

import torch
from torch import nn

# DBPN's (kernel, stride, padding) per scale: the official code's choices, and the paper's.
PROJECTION_GEOMETRY = {2: (6, 2, 2), 4: (8, 4, 2), 8: (12, 8, 2)}


def projection_geometry(scale: int) -> tuple[int, int, int]:
    """(kernel, stride, padding) of DBPN's scale-changing convolutions at `scale`."""
    if scale not in PROJECTION_GEOMETRY:
        raise ValueError(f"back-projection units are defined for scales "
                         f"{', '.join(map(str, PROJECTION_GEOMETRY))}, not {scale}")
    return PROJECTION_GEOMETRY[scale]


def _conv(in_channels: int, out_channels: int, kernel: int, stride: int = 1, padding: int = 0,
          transposed: bool = False) -> nn.Sequential:
    """A convolution (or transposed convolution) and a PReLU with one slope, as DBPN uses."""
    layer = nn.ConvTranspose2d if transposed else nn.Conv2d
    return nn.Sequential(layer(in_channels, out_channels, kernel, stride, padding), nn.PReLU())


class _Projection(nn.Module):
    """A back-projection unit; `inputs` > 1 first fuses that many concatenated feature maps
    with a 1x1 convolution (D-DBPN's dense connections)."""

    def __init__(self, channels: int, scale: int, inputs: int, up: bool) -> None:
        super().__init__()
        kernel, stride, padding = projection_geometry(scale)
        self.fuse = _conv(channels * inputs, channels, 1) if inputs > 1 else nn.Identity()
        self.project = _conv(channels, channels, kernel, stride, padding, transposed=up)
        self.back = _conv(channels, channels, kernel, stride, padding, transposed=not up)
        self.correct = _conv(channels, channels, kernel, stride, padding, transposed=up)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.fuse(x)
        estimate = self.project(x)
        return estimate + self.correct(self.back(estimate) - x)


class UpProjection(_Projection):
    """LR features -> HR features: H0 = up(L), L0 = down(H0), H = H0 + up(L0 - L)."""

    def __init__(self, channels: int, scale: int, inputs: int = 1) -> None:
        super().__init__(channels, scale, inputs, up=True)


class DownProjection(_Projection):
    """HR features -> LR features: L0 = down(H), H0 = up(L0), L = L0 + down(H0 - H)."""

    def __init__(self, channels: int, scale: int, inputs: int = 1) -> None:
        super().__init__(channels, scale, inputs, up=False)


class DenseBackProjection(nn.Module):
    """D-DBPN's body: `stages` up-projections and `stages` - 1 down-projections, alternating,
    densely connected; returns the concatenated HR features of all up-projections."""

    def __init__(self, channels: int, scale: int, stages: int) -> None:
        super().__init__()
        self.ups = nn.ModuleList(
            UpProjection(channels, scale, inputs=max(stage, 1)) for stage in range(stages)
        )
        self.downs = nn.ModuleList(
            DownProjection(channels, scale, inputs=stage + 1) for stage in range(stages - 1)
        )
        self.out_channels = channels * stages

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        highs = [self.ups[0](x)]
        lows: list[torch.Tensor] = []
        for up, down in zip(self.ups[1:], self.downs, strict=True):
            lows.insert(0, down(torch.cat(highs, dim=1)))
            highs.insert(0, up(torch.cat(lows, dim=1)))
        return torch.cat(highs, dim=1)
