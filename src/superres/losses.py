"""Pixel losses for SR training: L1, MSE (L2) and Charbonnier."""

from __future__ import annotations

import torch
from torch import nn


class Charbonnier(nn.Module):
    """sqrt((sr - hr)^2 + eps^2), a differentiable L1 (LapSRN uses eps = 1e-3)."""

    def __init__(self, eps: float = 1e-3) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        return torch.sqrt((sr - hr) ** 2 + self.eps**2).mean()


PIXEL_LOSSES = {"l1": nn.L1Loss, "mse": nn.MSELoss, "charbonnier": Charbonnier}


def pixel_loss(name: str) -> nn.Module:
    """The pixel loss called `name` (l1, mse or charbonnier)."""
    if name not in PIXEL_LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose from {', '.join(PIXEL_LOSSES)}")
    return PIXEL_LOSSES[name]()
