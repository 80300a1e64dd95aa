"""The model registry: every named model, its scales, colour space and paper numbers.

Models are listed explicitly in `superres.models.MODELS` (no import-time discovery), so
adding a model is one visible line and a broken optional model cannot break the others.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

Color = Literal["y", "rgb", "any"]
# dataset -> scale -> (PSNR dB, SSIM or None), as published (Y channel, shave = scale).
Reference = Mapping[str, Mapping[int, tuple[float, float | None]]]


@dataclass(frozen=True)
class ModelSpec:
    """What a named model is: how to build it and what the literature says about it."""

    name: str
    summary: str
    paper: str
    scales: tuple[int, ...]
    build: Callable[[int], nn.Module]
    color: Color  # "y": the network sees the Y channel; "any": works on any channel count
    framework: str  # survey framework: interpolation, pre-upsampling, post-upsampling, ...
    learned: bool = True  # has weights to ship (False: interpolation, or learns at test time)
    trains_at_test_time: bool = False  # ZSSR, DIP: optimised on each input image
    reference: Reference = field(default_factory=dict)

    def check_scale(self, scale: int) -> None:
        """Raise a ValueError naming the supported scales when `scale` is not one of them."""
        if scale not in self.scales:
            supported = ", ".join(str(s) for s in self.scales)
            raise ValueError(f"{self.name} supports scales {supported}, not {scale}")

    def params(self, scale: int) -> int:
        """Trainable parameters of the model built for `scale` (built on the meta device:
        shapes only, no memory, so counting RCAN or EDSR is instant)."""
        with torch.device("meta"):
            model = self.build(scale)
        return sum(p.numel() for p in model.parameters() if p.requires_grad)
