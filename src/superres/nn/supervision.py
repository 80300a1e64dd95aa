"""Multi-supervision, a learning strategy of the survey: a network whose intermediate
outputs are each supervised (DRCN's recursions, LapSRN's pyramid levels) says how its loss
is computed, and the trainer asks it through this one explicit type instead of probing for a
method by name."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import ClassVar

import torch
from torch import nn

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class MultiSupervised(nn.Module, ABC):
    """A network trained on more than its final output.

    `targets` names what its loss needs beside the HR batch (FSRNet's landmark "heatmaps"):
    the training sampler must deliver them, in this order, after LR and HR."""

    targets: tuple[str, ...] = ()
    # The weights of its loss terms beside the pixel loss, by name (a recipe's `model_loss`
    # changes them through `set_loss_weights`).
    loss_weights: ClassVar[dict[str, float]] = {}

    def set_loss_weights(self, weights: Mapping[str, float]) -> None:
        """Override some of `loss_weights`, for this network only."""
        unknown = sorted(set(weights) - set(self.loss_weights))
        if unknown:
            known = ", ".join(self.loss_weights) or "none"
            raise ValueError(f"model_loss: unknown term(s) {', '.join(unknown)} for "
                             f"{type(self).__name__}; known: {known}")
        self.loss_weights = {**self.loss_weights, **weights}  # type: ignore[misc]

    @abstractmethod
    def training_loss(
        self, lr: torch.Tensor, hr: torch.Tensor, loss_fn: LossFn, step: int,
        *targets: torch.Tensor,
    ) -> torch.Tensor:
        """The loss of one batch with the pixel loss `loss_fn`, at optimiser step `step`
        (for losses whose weights follow a schedule), given the batch's `targets`."""
