"""Deep image prior: Ulyanov, Vedaldi and Lempitsky, "Deep Image Prior", CVPR 2018. No
training data and no weights: a randomly initialised hourglass network maps a fixed noise
image to the HR image and is optimised, for this one image, until its bicubic downscaling
matches the LR input. The network's structure is the prior: it fits natural image content
long before it fits noise, so stopping early gives a clean, sharp upscaling.

The setting is the paper's SR one (its `super-resolution.ipynb`): a 5-level encoder-decoder
with skip connections, 128 channels (4 on the skips), 3x3 convolutions with reflection
padding, strided downsampling, bilinear upsampling, batch norm, LeakyReLU(0.2), a 1x1 output
convolution and a sigmoid; input 32 channels of uniform noise scaled by 1/10, perturbed at
every step by Gaussian noise of std 0.03 (x4) or 0.05 (x8) (the paper's noise
regularisation); MSE on the LR image, Adam at lr 0.01, 2000 steps at x4 and 4000 at x8.

Deviations: the downsampling operator is MATLAB's antialiased bicubic (`imresize`), the
degradation the benchmarks use, where the authors' code uses a Lanczos-2 kernel; the noise
is drawn at a size padded up to a multiple of 32 and the output cropped, where the authors
crop the image; x2 (not in the paper) uses the x4 settings; batch norm always normalises
with the current image's statistics (the authors' code never leaves training mode). The
default is 300 steps, not 2000, because one step at Set5 size takes seconds on a CPU: on a
GPU pass `iterations=2000` (x4) or 4000 (x8) for the paper's setting. The output comes from
the weights whose downscaling best matched the LR image (robust to Adam's occasional
spikes). Paper number: Set5 x4 29.90 dB PSNR (recalled; the paper reports no SSIM).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from superres.image.resize import imresize
from superres.models.image_specific import ImageSpecific, ImageSpecificFit
from superres.models.registry import ModelSpec

PAPER = "Ulyanov, Vedaldi and Lempitsky, Deep Image Prior, CVPR 2018"

PAPER_ITERATIONS = {2: 2000, 4: 2000, 8: 4000}  # x2 is not in the paper: x4's setting
NOISE_REGULARISATION = {2: 0.03, 4: 0.03, 8: 0.05}
DEFAULT_ITERATIONS = 300  # the CPU default; see the module docstring


def _conv(in_channels: int, out_channels: int, kernel: int, stride: int = 1) -> list[nn.Module]:
    """Reflection-padded convolution, then batch norm (per-image statistics), LeakyReLU."""
    pad = [nn.ReflectionPad2d(kernel // 2)] if kernel > 1 else []
    return [
        *pad,
        nn.Conv2d(in_channels, out_channels, kernel, stride),
        nn.BatchNorm2d(out_channels, track_running_stats=False),
        nn.LeakyReLU(0.2),
    ]


class HourglassLevel(nn.Module):
    """One scale of the hourglass: a 1x1 skip branch beside a deeper branch that halves the
    resolution, runs the inner levels and upsamples back; the two are concatenated and fused."""

    def __init__(self, in_channels: int, width: int, skip: int, inner: nn.Module | None) -> None:
        super().__init__()
        self.skip = nn.Sequential(*_conv(in_channels, skip, 1))
        self.deeper = nn.Sequential(
            *_conv(in_channels, width, 3, stride=2),
            *_conv(width, width, 3),
            *([inner] if inner is not None else []),
            nn.Upsample(scale_factor=2, mode="bilinear"),
        )
        self.fuse = nn.Sequential(
            nn.BatchNorm2d(skip + width, track_running_stats=False),
            *_conv(skip + width, width, 3),
            *_conv(width, width, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fuse(torch.cat([self.skip(x), self.deeper(x)], dim=1))


def hourglass(
    in_channels: int = 32, out_channels: int = 3, width: int = 128, skip: int = 4,
    levels: int = 5,
) -> nn.Sequential:
    """The paper's "skip" encoder-decoder; input sides must be multiples of 2^levels."""
    inner = None
    for level in reversed(range(levels)):
        inner = HourglassLevel(in_channels if level == 0 else width, width, skip, inner)
    return nn.Sequential(inner, nn.Conv2d(width, out_channels, 1), nn.Sigmoid())


@dataclass(frozen=True)
class DIPFit(ImageSpecificFit):
    """`ImageSpecificFit` and how well the optimisation fitted the LR image."""

    step_seconds: float  # mean time of one optimisation step
    lr_psnr: float  # dB: how well the returned weights' output, downscaled, matched the LR


class _Optimised(NamedTuple):
    """What the optimisation of one image hands to the final pass and to its record."""

    noise: torch.Tensor  # the fixed input
    best: list[torch.Tensor]  # the weights whose output, downscaled, fitted the LR image best
    steps: int
    step_seconds: float  # mean time of one step
    lr_psnr: float  # the best fit's


class DeepImagePrior(ImageSpecific[_Optimised, DIPFit]):
    """Deep image prior SR for one scale: each call to forward optimises `net` afresh for
    each input image.

    `iterations`: the most optimisation steps (default 300 for CPUs; the paper's 2000 at x4
    and 4000 at x8 are in `PAPER_ITERATIONS`); `patience`: stop when the LR PSNR has not
    improved for that many steps (None: never); `seed`: fixes the weights, the input noise and
    its perturbations; `width`: channels of every level (the paper's 128; fewer trade quality
    for speed); the rest as `ImageSpecific`. `fits` holds a `DIPFit` per image upscaled
    since construction.
    """

    label = "DIP"
    repr_settings = ("scale", "iterations", "time_budget", "patience", "seed")

    def __init__(
        self,
        scale: int,
        *,
        iterations: int = DEFAULT_ITERATIONS,
        time_budget: float | None = None,
        patience: int | None = 100,
        seed: int = 0,
        input_channels: int = 32,
        width: int = 128,
        learning_rate: float = 0.01,
        noise_regularisation: float | None = None,
        progress: bool = True,
    ) -> None:
        super().__init__(scale, hourglass(input_channels, width=width), iterations=iterations,
                         time_budget=time_budget, seed=seed, progress=progress)
        self.patience = patience
        self.input_channels = input_channels
        self.width = width
        self.learning_rate = learning_rate
        self.noise_regularisation = (NOISE_REGULARISATION.get(scale, 0.03)
                                     if noise_regularisation is None else noise_regularisation)
        self.levels = 5

    def _hr_size(self, lr: torch.Tensor) -> tuple[int, int]:
        """The output's size, which the padded noise's output is cropped to."""
        height, width = lr.shape[-2:]
        return height * self.scale, width * self.scale

    def _padded(self, height: int, width: int) -> tuple[int, int]:
        """Sizes the 5 stride-2 levels divide exactly, and big enough for reflection padding
        at the deepest level (2 x 2 there)."""
        multiple = 2**self.levels
        return tuple(max(2 * multiple, math.ceil(n / multiple) * multiple)
                     for n in (height, width))  # type: ignore[return-value]

    def _initialise(self) -> None:
        """PyTorch's default initialisation (as the authors' code), seeded, drawn on the CPU
        so every device starts from the same network."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            fresh = hourglass(self.input_channels, width=self.width)
        self.net.load_state_dict(fresh.state_dict())

    def _train(self, lr: torch.Tensor, start: float) -> _Optimised:
        """Adam on the LR reconstruction error of the output for seeded noise, perturbed at
        every step; keeps the weights that fitted LR best."""
        size = self._hr_size(lr)
        generator = torch.Generator(device=lr.device).manual_seed(self.seed)
        noise = torch.rand(1, self.input_channels, *self._padded(*size),
                           generator=generator, device=lr.device) / 10
        optimiser = torch.optim.Adam(self.net.parameters(), lr=self.learning_rate)
        params = list(self.net.parameters())
        best = [p.detach().clone() for p in params]
        best_psnr, best_step, step_seconds, steps, optimising = -math.inf, 0, 0.0, 0, 0.0
        bar = self._steps()
        for step in bar:
            # Leave room for this step and the final pass (a forward: under half a step).
            if self._out_of_time(start, 1.5 * step_seconds):
                break
            if self.patience is not None and step - best_step > self.patience:
                break
            tick = time.perf_counter()
            perturbation = torch.randn(noise.shape, generator=generator, device=noise.device)
            sr = self.net(noise + self.noise_regularisation * perturbation)
            sr = sr[..., : size[0], : size[1]]
            loss = F.mse_loss(imresize(sr, size=tuple(lr.shape[-2:])), lr)
            psnr = -10 * math.log10(max(loss.item(), 1e-12))
            if psnr > best_psnr:  # these weights (before this step's update) fit best so far
                best_psnr, best_step = psnr, step
                best = [p.detach().clone() for p in params]
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            step_seconds = time.perf_counter() - tick
            optimising += step_seconds
            steps = step + 1
            bar.set_postfix(lr_psnr=f"{psnr:.2f}")
        bar.close()
        return _Optimised(noise, best, steps, optimising / max(steps, 1), best_psnr)

    def _final(self, lr: torch.Tensor, trained: _Optimised) -> torch.Tensor:
        """The best weights' output for the unperturbed noise, cropped to the HR size."""
        for param, value in zip(self.net.parameters(), trained.best, strict=True):
            param.copy_(value)
        height, width = self._hr_size(lr)
        return self.net(trained.noise)[..., :height, :width]

    def _record(self, trained: _Optimised, seconds: float) -> DIPFit:
        return DIPFit(trained.steps, seconds, trained.step_seconds, trained.lr_psnr)

DIP = ModelSpec(
    name="dip",
    summary="Deep image prior: a 5-level hourglass (128 channels, skips of 4) fitted to the "
    "LR image from fixed noise at test time (no weights), 300 steps by default, RGB",
    paper=PAPER,
    scales=(2, 4, 8),
    build=DeepImagePrior,
    color="rgb",
    framework="image prior",
    learned=False,  # it is optimised at test time: nothing to ship
    supervision="zero-shot",
    reference={"Set5": {4: (29.90, None)}},  # the paper's SR table, PSNR only (recalled)
)
