"""The model registry: every named model, its scales, colour space and paper numbers.

Models are listed explicitly in `superres.models.MODELS` (no import-time discovery), so
adding a model is one visible line and a broken optional model cannot break the others.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal, get_args

import torch
from torch import nn

Color = Literal["y", "rgb", "any"]
# The survey's frameworks (where upsampling happens), plus interpolation and a deep image
# prior, which generates the HR image from noise and sees the LR image only in its loss.
Framework = Literal["interpolation", "pre-upsampling", "post-upsampling", "progressive",
                    "iterative up-and-down", "image prior"]
# How a model learns: from paired LR/HR examples, from unpaired LR and HR images (a learned
# degradation, cycle consistency), or from the LR image alone at test time.
Supervision = Literal["paired", "unpaired", "zero-shot"]
FRAMEWORKS: tuple[str, ...] = get_args(Framework)
SUPERVISIONS: tuple[str, ...] = get_args(Supervision)
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
    framework: Framework
    learned: bool = True  # has weights to ship (False: interpolation, or learns at test time)
    supervision: Supervision = "paired"
    reference: Reference = field(default_factory=dict)
    # Frames the model sees per output frame: 1 for image models, 2r + 1 for a video model
    # that upscales frame t from frames t-r..t+r (`superres.inference.temporal`).
    frames: int = 1
    # Takes a guide image at HR size as a second input, `model(lr, guide)` (colour-guided
    # depth SR), and is scored on depth sets (`superres.depth`), not by the image protocol.
    guided: bool = False

    def __post_init__(self) -> None:
        if self.frames < 1 or self.frames % 2 == 0:
            raise ValueError(f"{self.name}: frames must be odd (2r + 1), not {self.frames}")
        for value, allowed in ((self.framework, FRAMEWORKS), (self.supervision, SUPERVISIONS)):
            if value not in allowed:
                raise ValueError(f"{self.name}: {value!r} is not one of {', '.join(allowed)}")

    @property
    def radius(self) -> int:
        """Frames on either side of the one being upscaled: 0 for image models."""
        return self.frames // 2

    @property
    def trains_at_test_time(self) -> bool:
        """ZSSR, DIP: optimised on each input image."""
        return self.supervision == "zero-shot"

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
