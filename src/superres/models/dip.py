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

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from superres.models.registry import ModelSpec
from superres.resize import imresize

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
class DIPFit:
    """How the optimisation of one image went: what a report needs to state the budget used."""

    steps: int
    seconds: float  # the whole call for this image: optimisation and final pass
    step_seconds: float  # mean time of one optimisation step
    lr_psnr: float  # dB: how well the returned weights' output, downscaled, matched the LR


class DeepImagePrior(nn.Module):
    """Deep image prior SR for one scale: each call to forward optimises `net` afresh for
    each input image.

    `iterations`: the most optimisation steps (default 300 for CPUs; the paper's 2000 at x4
    and 4000 at x8 are in `PAPER_ITERATIONS`); `time_budget`: seconds per image, the final
    pass included; `patience`: stop when the LR PSNR has not improved for that many steps
    (None: never); `seed`: fixes the weights, the input noise and its perturbations, so the
    result is reproducible for a fixed number of steps; `width`: channels of every level (the
    paper's 128; fewer trade quality for speed); `progress`: a tqdm bar. `fits` holds a
    `DIPFit` per image upscaled since construction.
    """

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
        super().__init__()
        self.scale = scale
        self.iterations = iterations
        self.time_budget = time_budget
        self.patience = patience
        self.seed = seed
        self.input_channels = input_channels
        self.width = width
        self.learning_rate = learning_rate
        self.noise_regularisation = (NOISE_REGULARISATION.get(scale, 0.03)
                                     if noise_regularisation is None else noise_regularisation)
        self.progress = progress
        self.net = hourglass(input_channels, width=width)
        self.levels = 5
        self.fits: list[DIPFit] = []

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        """N x 3 x H x W in [0, 1] -> N x 3 x sH x sW; every image gets its own optimisation."""
        return torch.cat([self._upscale(image[None]) for image in lr])

    def _upscale(self, lr: torch.Tensor) -> torch.Tensor:
        start = time.perf_counter()
        height, width = (n * self.scale for n in lr.shape[-2:])
        generator = torch.Generator(device=lr.device).manual_seed(self.seed)
        noise = torch.rand(1, self.input_channels, *self._padded(height, width),
                           generator=generator, device=lr.device) / 10
        self._initialise()
        with torch.enable_grad():
            best, steps, step_seconds, lr_psnr = self._optimise(
                lr, noise, generator, (height, width), start)
        with torch.no_grad():
            for param, value in zip(self.net.parameters(), best, strict=True):
                param.copy_(value)
            sr = self.net(noise)[..., :height, :width]
        self.fits.append(DIPFit(steps, time.perf_counter() - start, step_seconds, lr_psnr))
        return sr

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

    def _optimise(
        self, lr: torch.Tensor, noise: torch.Tensor, generator: torch.Generator,
        size: tuple[int, int], start: float,
    ) -> tuple[list[torch.Tensor], int, float, float]:
        """Adam on the LR reconstruction error; returns the weights that fitted LR best, the
        steps run, the mean seconds per step and the best LR PSNR."""
        optimiser = torch.optim.Adam(self.net.parameters(), lr=self.learning_rate)
        params = list(self.net.parameters())
        best = [p.detach().clone() for p in params]
        best_psnr, best_step, step_seconds, steps, optimising = -math.inf, 0, 0.0, 0, 0.0
        bar = tqdm(range(self.iterations), desc=f"DIP x{self.scale}", unit="step",
                   leave=False, disable=not self.progress)
        for step in bar:
            elapsed = time.perf_counter() - start
            # Leave room for this step and the final pass (a forward: under half a step).
            if self.time_budget is not None and elapsed + 1.5 * step_seconds > self.time_budget:
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
        return best, steps, optimising / max(steps, 1), best_psnr

    def extra_repr(self) -> str:
        return (f"scale={self.scale}, iterations={self.iterations}, "
                f"time_budget={self.time_budget}, patience={self.patience}, seed={self.seed}")


DIP = ModelSpec(
    name="dip",
    summary="Deep image prior: a 5-level hourglass (128 channels, skips of 4) fitted to the "
    "LR image from fixed noise at test time (no weights), 300 steps by default, RGB",
    paper=PAPER,
    scales=(2, 4, 8),
    build=DeepImagePrior,
    color="rgb",
    framework="unsupervised",
    learned=False,  # it is optimised at test time: nothing to ship
    trains_at_test_time=True,
    reference={"Set5": {4: (29.90, None)}},  # the paper's SR table, PSNR only (recalled)
)
