"""Guided SR blocks: DJF's two-branch fusion (one branch reads the target, one the guide, a
third fuses their maps into a residual to the interpolated target), and a joint bilateral
upsampler whose kernel weights are learned (pixel-adaptive, as PAC and DKN learn them)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from superres.image.resize import imresize
from superres.nn.layers import conv_stack


class JointFilter(nn.Module):
    """DJF's CNN_T (target), CNN_G (guide) and CNN_F (fusion), each a plain ReLU stack
    `widths` / `kernels` ending in one map; output = target + CNN_F([CNN_T(t), CNN_G(g)])."""

    def __init__(self, guide_channels: int = 3, branch: Sequence[int] = (96, 48),
                 fusion: Sequence[int] = (64, 32), kernels: Sequence[int] = (9, 1, 5)) -> None:
        super().__init__()
        self.target = conv_stack([1, *branch, 1], kernels, "relu")
        self.guide = conv_stack([guide_channels, *branch, 1], kernels, "relu")
        self.fusion = conv_stack([2, *fusion, 1], kernels, "relu")

    def forward(self, target: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
        if guide.shape[-2:] != target.shape[-2:]:
            raise ValueError(f"the guide is {tuple(guide.shape[-2:])} (H, W), the upsampled "
                             f"target {tuple(target.shape[-2:])}: they must match")
        features = torch.cat([self.target(target), self.guide(guide)], dim=1)
        return target + self.fusion(features)


class LearnedJointBilateral(nn.Module):
    """Joint bilateral upsampling with learned weights (pixel-adaptive kernels, as PAC's joint
    upsampling and DKN learn them): each HR pixel p is a softmax-weighted mean of the LR depth
    at the 2r x 2r LR pixels q nearest to it, with logits

        -|p - q|^2 / 2 sigma_s^2 - |f(p) - f(q)|^2 / 2 - (D(q) - B(p))^2 / 2 sigma_d^2

    where f is a CNN embedding of the guide (a 1 x 1 projection, initialised to guide /
    sigma_r, plus a ReLU stack initialised to zero), B the bicubic-upsampled depth and the
    sigmas learned. Untrained, it is Kopf et al.'s JBU with a weak depth-range term; training
    only moves it from there. The scale is the guide's size over the depth's; `scale` serves
    only a call without a guide, where the bicubic-upsampled depth guides itself."""

    def __init__(self, scale: int, guide_channels: int = 3, features: int = 8,
                 hidden: int = 16, sigma_spatial: float = 1.0, sigma_range: float = 0.1,
                 sigma_depth: float = 0.5, radius: int = 2) -> None:
        super().__init__()
        self.scale, self.guide_channels = scale, guide_channels
        if features < guide_channels:
            raise ValueError(f"features ({features}) must hold the {guide_channels} guide "
                             "channels")
        self.radius = radius
        self.log_sigma_spatial = nn.Parameter(torch.tensor(math.log(sigma_spatial)))
        self.log_sigma_depth = nn.Parameter(torch.tensor(math.log(sigma_depth)))
        self.project = nn.Conv2d(guide_channels, features, 1)
        self.refine = conv_stack([guide_channels, hidden, hidden, features], (3, 3, 3), "relu")
        with torch.no_grad():
            self.project.weight.zero_()
            self.project.bias.zero_()
            for channel in range(guide_channels):
                self.project.weight[channel, channel] = 1 / sigma_range
            last = self.refine[-1]
            last.weight.zero_()
            last.bias.zero_()

    def embed(self, guide: torch.Tensor) -> torch.Tensor:
        """The guide's features f: the scaled guide plus what training learned to add."""
        return self.project(guide) + self.refine(guide)

    def forward(self, lr: torch.Tensor, guide: torch.Tensor | None = None) -> torch.Tensor:
        if guide is None:
            guide = imresize(lr, self.scale).expand(-1, self.guide_channels, -1, -1)
        (height, width), (rows, cols) = guide.shape[-2:], lr.shape[-2:]
        scale = height // rows
        if scale < 1 or (height, width) != (rows * scale, cols * scale):
            raise ValueError(f"the guide is {width}x{height}: it must be an integer multiple "
                             f"of the {cols}x{rows} depth map")
        features = self.embed(guide)
        bicubic = imresize(lr, size=(height, width))
        # p's position on the LR grid (pixel centres at integers), as imresize maps it
        ys = (torch.arange(height, device=lr.device) + 0.5) / scale - 0.5
        xs = (torch.arange(width, device=lr.device) + 0.5) / scale - 0.5
        sigma_s2 = 2 * torch.exp(2 * self.log_sigma_spatial)
        sigma_d2 = 2 * torch.exp(2 * self.log_sigma_depth)
        logits, values = [], []
        for dy in range(1 - self.radius, self.radius + 1):
            qy = (torch.floor(ys).long() + dy).clamp(0, rows - 1)
            hy = ((qy + 0.5) * scale - 0.5).round().long().clamp(0, height - 1)
            for dx in range(1 - self.radius, self.radius + 1):
                qx = (torch.floor(xs).long() + dx).clamp(0, cols - 1)
                hx = ((qx + 0.5) * scale - 0.5).round().long().clamp(0, width - 1)
                depth = lr[..., qy, :][..., qx]
                distance2 = (ys - qy)[:, None] ** 2 + (xs - qx)[None, :] ** 2
                colour2 = (features - features[..., hy, :][..., hx]).pow(2).sum(1, keepdim=True)
                logits.append(-distance2 / sigma_s2 - colour2 / 2
                              - (depth - bicubic) ** 2 / sigma_d2)
                values.append(depth)
        weights = torch.softmax(torch.stack(logits), dim=0)
        return (weights * torch.stack(values)).sum(0)
