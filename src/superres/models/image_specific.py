"""The shell of the models that learn from each input at test time (ZSSR, the deep image
prior), so that both keep the same contract: every image of a batch gets `net` trained afresh
from seeded weights, with gradients even when called under `torch.no_grad` (as the upscaler
calls every model), within a per-image time budget that includes the final pass, and leaves a
record of what that budget bought. Subclasses say how to train and how to upscale after."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Generic, TypeVar

import torch
from torch import nn
from tqdm import tqdm


@dataclass(frozen=True)
class ImageSpecificFit:
    """How the training on one image went: what a report needs to state the budget used."""

    steps: int
    seconds: float  # the whole call for this image: training and final pass


Trained = TypeVar("Trained")  # what training hands to the final pass and to the record
Fit = TypeVar("Fit", bound=ImageSpecificFit)


class ImageSpecific(nn.Module, ABC, Generic[Trained, Fit]):
    """Upscales each image of a batch with `net` trained on that image alone.

    `iterations`: the most training steps; `time_budget`: seconds per image, final pass
    included (None: no limit); `seed`: fixes everything random in the training, so the result
    is reproducible for a fixed number of steps (a time budget makes the step count depend on
    the machine); `progress`: a tqdm bar. `fits` holds a record per image upscaled since
    construction.
    """

    label: ClassVar[str]  # names the model on the progress bar
    repr_settings: ClassVar[tuple[str, ...]] = ("scale", "iterations", "time_budget", "seed")

    def __init__(
        self, scale: int, net: nn.Module, *, iterations: int, time_budget: float | None,
        seed: int, progress: bool,
    ) -> None:
        super().__init__()
        self.scale = scale
        self.iterations = iterations
        self.time_budget = time_budget
        self.seed = seed
        self.progress = progress
        self.net = net
        self.fits: list[Fit] = []

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        """N x 3 x H x W in [0, 1] -> N x 3 x sH x sW; every image gets its own network."""
        return torch.cat([self._upscale(image[None]) for image in lr])

    def _upscale(self, lr: torch.Tensor) -> torch.Tensor:
        """One image: the clock starts before the weights are drawn, so `seconds` and the
        budget cover the whole call."""
        start = time.perf_counter()
        self._initialise()
        with torch.enable_grad():
            trained = self._train(lr, start)
        with torch.no_grad():
            sr = self._final(lr, trained)
        self.fits.append(self._record(trained, time.perf_counter() - start))
        return sr

    @abstractmethod
    def _initialise(self) -> None:
        """Re-draw `net`'s weights from `seed`, the same on every device."""

    @abstractmethod
    def _train(self, lr: torch.Tensor, start: float) -> Trained:
        """Train `net` on `lr` for up to `iterations` steps, stopping before a step that
        `_out_of_time(start, ...)` says would overrun the budget."""

    @abstractmethod
    def _final(self, lr: torch.Tensor, trained: Trained) -> torch.Tensor:
        """`lr` upscaled by the trained `net` (run under `torch.no_grad`)."""

    @abstractmethod
    def _record(self, trained: Trained, seconds: float) -> Fit:
        """The record of this image's fit, which took `seconds` in all."""

    def _steps(self) -> tqdm:
        """The training steps, behind a progress bar when `progress` is on."""
        return tqdm(range(self.iterations), desc=f"{self.label} x{self.scale}", unit="step",
                    leave=False, disable=not self.progress)

    def _out_of_time(self, start: float, needed: float) -> bool:
        """Whether `needed` more seconds would take the image begun at `start` past the
        time budget."""
        return (self.time_budget is not None
                and time.perf_counter() - start + needed > self.time_budget)

    def extra_repr(self) -> str:
        return ", ".join(f"{name}={getattr(self, name)}" for name in self.repr_settings)
