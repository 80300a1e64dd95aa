"""Motion compensation, the video branch's alignment component: warping a frame by a dense
flow, VESPCN's coarse-to-fine flow network, and the smoothness penalty that trains it.

A flow is N x 2 x H x W in pixels, (dx, dy) = (columns, rows), and `flow_warp(frame, flow)`
samples `frame` at p + flow(p): with the flow from a reference frame to a neighbour, it
brings the neighbour onto the reference's grid (backward warping, a spatial transformer).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def flow_warp(frame: torch.Tensor, flow: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """`frame` (N x C x H x W) resampled at p + `flow`(p) for every pixel p; samples outside
    the frame take the nearest edge pixel (border padding), so a warp never darkens edges."""
    if flow.ndim != 4 or flow.shape[1] != 2 or flow.shape[-2:] != frame.shape[-2:]:
        raise ValueError(f"flow must be N x 2 x {frame.shape[-2]} x {frame.shape[-1]}, "
                         f"got {tuple(flow.shape)}")
    height, width = frame.shape[-2:]
    rows = torch.arange(height, dtype=flow.dtype, device=flow.device)
    cols = torch.arange(width, dtype=flow.dtype, device=flow.device)
    # pixel centres to grid_sample's [-1, 1] (align_corners=False: -1 is the left edge)
    x = (cols.view(1, 1, width) + flow[:, 0] + 0.5) * (2 / width) - 1
    y = (rows.view(1, height, 1) + flow[:, 1] + 0.5) * (2 / height) - 1
    grid = torch.stack([x, y], dim=-1)
    return F.grid_sample(frame, grid.to(frame.dtype), mode=mode, padding_mode="border",
                         align_corners=False)


def _flow_head(channels: list[int], kernels: list[int], strides: list[int],
               shuffle: int) -> nn.Sequential:
    """ReLU convolutions, a tanh one, and a pixel shuffle back to the input's size with
    two channels: VESPCN's flow estimators at one resolution."""
    layers: list[nn.Module] = []
    for i, (kernel, stride) in enumerate(zip(kernels, strides, strict=True)):
        layers.append(nn.Conv2d(channels[i], channels[i + 1], kernel, stride, kernel // 2))
        layers.append(nn.Tanh() if i == len(kernels) - 1 else nn.ReLU(inplace=True))
    layers.append(nn.PixelShuffle(shuffle))
    return nn.Sequential(*layers)


class CoarseToFineFlow(nn.Module):
    """VESPCN's motion-compensation network (Caballero et al., CVPR 2017, section 3.2): a
    coarse flow estimated at 1/4 resolution (two stride-2 convolutions, x4 pixel shuffle),
    then a fine correction at 1/2 resolution from the frames, the coarse flow and the
    neighbour warped by it; the flow is their sum.

    `channels`: colour channels per frame (1 for Y). `max_flow`: the displacement in pixels
    that the tanh outputs' extreme means (our scaling; the flow is in pixels here).
    """

    def __init__(self, channels: int = 1, features: int = 24, max_flow: float = 8.0) -> None:
        super().__init__()
        self.max_flow = max_flow
        f = features
        self.coarse = _flow_head([2 * channels, f, f, f, f, 32], [5, 3, 5, 3, 3],
                                 [2, 1, 2, 1, 1], shuffle=4)
        self.fine = _flow_head([3 * channels + 2, f, f, f, f, 8], [5, 3, 3, 3, 3],
                               [2, 1, 1, 1, 1], shuffle=2)

    def forward(self, reference: torch.Tensor, neighbour: torch.Tensor) -> torch.Tensor:
        """The flow from `reference` to `neighbour` (N x 2 x H x W, pixels); H and W must be
        multiples of 4, the coarse level's stride."""
        height, width = reference.shape[-2:]
        if height % 4 or width % 4:
            raise ValueError(f"the coarse flow works at 1/4 resolution: frame size "
                             f"{width}x{height} must be a multiple of 4 (pad it first)")
        coarse = self.max_flow * self.coarse(torch.cat([reference, neighbour], 1))
        warped = flow_warp(neighbour, coarse)
        fine = self.fine(torch.cat([reference, neighbour, coarse / self.max_flow, warped], 1))
        return coarse + self.max_flow * fine


def flow_smoothness(flow: torch.Tensor, epsilon: float = 0.01) -> torch.Tensor:
    """VESPCN's regulariser of a flow: the Huber penalty sqrt(epsilon + sum of the squared
    horizontal and vertical differences of both components), averaged over pixels, so a
    learned flow stays smooth where the frames give no evidence."""
    dx = flow[..., :-1, 1:] - flow[..., :-1, :-1]
    dy = flow[..., 1:, :-1] - flow[..., :-1, :-1]
    return torch.sqrt(epsilon + dx.square().sum(dim=1) + dy.square().sum(dim=1)).mean()
