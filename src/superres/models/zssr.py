"""ZSSR: Shocher, Cohen and Irani, "'Zero-Shot' Super-Resolution using Deep Internal Learning",
CVPR 2018. No training set and no shipped weights: at test time a small image-specific CNN
learns to undo bicubic downscaling on examples made from the input alone, then upscales it.

The recipe is the paper's and its released code's (`configs.py`): 8 3x3 convolutions of 64
channels with ReLU, learning the residual over bicubic upsampling; HR "fathers" are random
crops (up to 128 x 128, one per step) of the input and of its downscaled versions, each with
one of the 8 flips/rotations, a source drawn with probability proportional to its area; the
LR "son" is the father bicubic-downscaled by the scale. L1 loss, Adam from lr 1e-3. Every 50
steps the net rebuilds the input from its own downscaling; every 60 steps a line is fitted to
the last 256 steps of that reconstruction error, and the rate is divided by 10 when the
slope is under 1.5 of its standard error; training stops at rate 1e-6 or after 3000 steps.
The output is the median of the 8 flipped/rotated passes, each back-projected 10 times onto
the input, and the median back-projected again.

Deviations: the pyramid of downscaled inputs is fixed (factors 1, 0.9, ..., 0.5) where the
released code warps with a random scale, angle and shear; the convolutions have biases
(zero-initialised; the TF code has none); the weights are drawn with the code's std
sqrt(0.1 / fan_in). Paper numbers: Set5 x2 37.37 dB / 0.9570 (Table 1, recalled).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from superres.image.resize import imresize
from superres.models.image_specific import ImageSpecific, ImageSpecificFit
from superres.models.registry import ModelSpec
from superres.nn.blocks.residual import Residual
from superres.nn.frameworks import PreUpsampling
from superres.nn.layers import conv_stack

PAPER = ("Shocher, Cohen and Irani, 'Zero-Shot' Super-Resolution using Deep Internal "
         "Learning, CVPR 2018")

PYRAMID = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5)  # downscalings of the input that serve as fathers
TEST_EVERY = 50  # steps between reconstruction-error measurements
POLICY_EVERY = 60  # steps between learning-rate decisions
SLOPE_RANGE = 256  # steps of reconstruction error the line is fitted to
MIN_STEPS_PER_RATE = 256  # steps at a rate before it may change
SLOPE_RATIO = 1.5  # reduce the rate when -slope * ratio < std(slope)
MIN_RATE = 9e-6  # stop once the rate falls below this (at 1e-6)


def zssr_net(scale: int, channels: int = 3, width: int = 64, depth: int = 8) -> nn.Module:
    """The image-specific CNN: bicubic upsampling plus a learned residual."""
    body = conv_stack([channels, *[width] * (depth - 1), channels], [3] * depth, "relu")
    return PreUpsampling(Residual(body), scale)


def dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """The k-th of the 8 flips/rotations of the last two dims (k = 0 is the identity)."""
    return torch.rot90(x.flip(-1) if k >= 4 else x, k % 4, dims=(-2, -1))


def undo_dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """The inverse of `dihedral(x, k)`."""
    x = torch.rot90(x, -(k % 4), dims=(-2, -1))
    return x.flip(-1) if k >= 4 else x


def median(stack: torch.Tensor) -> torch.Tensor:
    """Median over dim 0, the mean of the two middle values for an even count (as NumPy)."""
    count = stack.shape[0]
    ordered = stack.sort(dim=0).values
    return ordered[(count - 1) // 2 : count // 2 + 1].mean(dim=0)


@dataclass(frozen=True)
class ZSSRFit(ImageSpecificFit):
    """`ImageSpecificFit` and where ZSSR's learning-rate policy had got to."""

    learning_rate: float  # the rate when training stopped
    reconstruction_mse: float  # the last measured error of rebuilding the input


class ZeroShotSR(ImageSpecific[tuple[int, float, float], ZSSRFit]):
    """ZSSR for one scale: each call to forward trains `net` afresh on each input image.

    `iterations`: the most training steps (the paper's 3000; the rate policy usually stops
    earlier); `time_budget`: training stops early enough to leave time for the final pass;
    `seed`: fixes the initial weights and the sampled crops; `crop_size`: the largest father
    side; `self_ensemble`: the 8 flips/rotations (8x the final pass); `back_projection`:
    iterations per output (0 to disable); the rest as `ImageSpecific`. `fits` holds a
    `ZSSRFit` per image upscaled since construction.
    """

    label = "ZSSR"

    def __init__(
        self,
        scale: int,
        *,
        iterations: int = 3000,
        time_budget: float | None = None,
        seed: int = 0,
        crop_size: int = 128,
        learning_rate: float = 1e-3,
        self_ensemble: bool = True,
        back_projection: int = 10,
        progress: bool = True,
    ) -> None:
        super().__init__(scale, zssr_net(scale), iterations=iterations, time_budget=time_budget,
                         seed=seed, progress=progress)
        self.crop_size = crop_size
        self.learning_rate = learning_rate
        self.self_ensemble = self_ensemble
        self.back_projection = back_projection

    def _upscale(self, lr: torch.Tensor) -> torch.Tensor:
        """Refuse an image too small to give a son of 2 x 2 pixels."""
        if min(lr.shape[-2:]) < 2 * self.scale:
            raise ValueError(f"ZSSR x{self.scale} needs an image of at least "
                             f"{2 * self.scale}x{2 * self.scale} pixels to learn from")
        return super()._upscale(lr)

    def _initialise(self) -> None:
        """Seeded weights, drawn on the CPU so every device starts from the same network."""
        generator = torch.Generator().manual_seed(self.seed)
        state = {}
        for name, tensor in self.net.state_dict().items():
            if name.endswith("weight"):
                fan_in = tensor[0].numel()
                std = math.sqrt(0.1 / fan_in)
                state[name] = torch.randn(tensor.shape, generator=generator) * std
            elif name.endswith("bias"):
                state[name] = torch.zeros(tensor.shape)
        self.net.load_state_dict(state)

    def _train(self, lr: torch.Tensor, start: float) -> tuple[int, float, float]:
        """Train on fathers and sons of `lr`; returns the steps run, the final learning rate
        and the last reconstruction error."""
        rng = np.random.default_rng(self.seed)
        sources = self._sources(lr)
        areas = np.array([s.shape[-2] * s.shape[-1] for s in sources], dtype=np.float64)
        optimiser = torch.optim.Adam(self.net.parameters(), lr=self.learning_rate)
        rate, last_change, steps, step_seconds = self.learning_rate, 0, 0, 0.0
        tested_at: list[int] = []
        errors: list[float] = []
        final_seconds = self._final_seconds(lr) if self.time_budget is not None else 0.0
        bar = self._steps()
        for step in bar:
            if step % TEST_EVERY == 0:
                errors.append(self._reconstruction_error(lr))
                tested_at.append(step)
                bar.set_postfix(rec_mse=f"{errors[-1]:.2e}", lr=f"{rate:.0e}")
            if self._out_of_time(start, step_seconds + final_seconds):
                break
            tick = time.perf_counter()
            father = self._father(sources, areas / areas.sum(), rng)
            son = imresize(father, size=(father.shape[-2] // self.scale,
                                         father.shape[-1] // self.scale))
            loss = F.l1_loss(self.net(son), father)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            step_seconds = time.perf_counter() - tick
            steps = step + 1
            if ((step + 1) % POLICY_EVERY == 0 and step - last_change > MIN_STEPS_PER_RATE
                    and _plateau(tested_at, errors)):
                rate /= 10
                last_change = step
                for group in optimiser.param_groups:
                    group["lr"] = rate
            if rate < MIN_RATE:
                break
        bar.close()
        return steps, rate, errors[-1] if errors else math.nan

    @torch.no_grad()
    def _final_seconds(self, lr: torch.Tensor) -> float:
        """The final pass's time, from one timed view and one timed back-projection step, so
        a time budget can leave room for it."""
        tick = time.perf_counter()
        sr = self.net(lr).clamp(0, 1)
        view = time.perf_counter() - tick
        tick = time.perf_counter()
        self._back_project(sr, lr, iterations=1)
        back_projection = (time.perf_counter() - tick) * self.back_projection
        views = 8 if self.self_ensemble else 1
        return views * (view + back_projection) + back_projection

    def _sources(self, lr: torch.Tensor) -> list[torch.Tensor]:
        """The input and its downscalings big enough to give a son of 2 x 2 pixels or more."""
        height, width = lr.shape[-2:]
        return [lr] + [
            imresize(lr, factor) for factor in PYRAMID[1:]
            if min(math.ceil(factor * height), math.ceil(factor * width)) >= 2 * self.scale
        ]

    def _father(
        self, sources: list[torch.Tensor], probabilities: np.ndarray, rng: np.random.Generator
    ) -> torch.Tensor:
        """A random crop (sides multiples of the scale) of a random source, flipped/rotated."""
        source = sources[rng.choice(len(sources), p=probabilities)]
        height, width = (min(self.crop_size, n) // self.scale * self.scale
                         for n in source.shape[-2:])
        top = int(rng.integers(source.shape[-2] - height + 1))
        left = int(rng.integers(source.shape[-1] - width + 1))
        crop = source[..., top : top + height, left : left + width]
        return dihedral(crop, int(rng.integers(8)))

    @torch.no_grad()
    def _reconstruction_error(self, lr: torch.Tensor) -> float:
        """MSE of the input rebuilt from its own downscaling: the paper's training signal for
        the learning-rate policy, since the true HR image is unknown."""
        height, width = (n // self.scale * self.scale for n in lr.shape[-2:])
        target = lr[..., :height, :width]
        son = imresize(target, size=(height // self.scale, width // self.scale))
        return F.mse_loss(self.net(son).clamp(0, 1), target).item()

    def _final(self, lr: torch.Tensor, trained: tuple[int, float, float]) -> torch.Tensor:
        """Geometric self-ensemble with back-projection, as the paper's final test (the
        trained `net` is all it needs)."""
        views = range(8) if self.self_ensemble else range(1)
        outputs = [
            self._back_project(undo_dihedral(self.net(dihedral(lr, k)), k).clamp(0, 1), lr)
            for k in views
        ]
        return self._back_project(median(torch.stack(outputs)), lr)

    def _back_project(
        self, sr: torch.Tensor, lr: torch.Tensor, iterations: int | None = None
    ) -> torch.Tensor:
        """Make `sr` consistent with `lr`: add back the upscaled error of its downscaling."""
        upsample = self.net.upsample
        for _ in range(self.back_projection if iterations is None else iterations):
            sr = (sr + upsample(lr - imresize(sr, size=tuple(lr.shape[-2:])))).clamp(0, 1)
        return sr

    def _record(self, trained: tuple[int, float, float], seconds: float) -> ZSSRFit:
        steps, rate, error = trained
        return ZSSRFit(steps, seconds, rate, error)


def _plateau(steps: list[int], errors: list[float]) -> bool:
    """Whether the reconstruction error has stopped falling: the slope of a line fitted to
    the last `SLOPE_RANGE` steps is small next to its own standard error."""
    count = SLOPE_RANGE // TEST_EVERY
    if len(errors) < count:
        return False
    (slope, _), covariance = np.polyfit(steps[-count:], errors[-count:], 1, cov=True)
    return -SLOPE_RATIO * slope <= math.sqrt(max(covariance[0, 0], 0.0))


ZSSR = ModelSpec(
    name="zssr",
    summary="ZSSR: an 8-layer 64-channel residual CNN trained at test time on the input "
    "alone (no weights), self-ensemble + back-projection, RGB",
    paper=PAPER,
    scales=(2, 3, 4),
    build=ZeroShotSR,
    color="rgb",
    framework="pre-upsampling",
    learned=False,  # it learns at test time: nothing to ship
    supervision="zero-shot",
    reference={"Set5": {2: (37.37, 0.9570)}},  # Table 1, bicubic kernel (recalled)
)
