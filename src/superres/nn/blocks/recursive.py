"""Recursion with shared weights (DRCN, DRRN, MS-LapSRN) and DRCN's recursive supervision.

A recursive network reaches the depth and receptive field of a very deep one (VDSR) by applying
one block again and again, so depth costs no parameters; supervising every recursion's output
is what makes such a long chain of one layer trainable (DRCN).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

import torch
from torch import nn


class Recursive(nn.Module):
    """One block applied `times` times with the same weights: it appears once in `parameters()`.

    With `shared_source`, every recursion's output is added to the recursion's first input
    (the "shared-source" local skip connection of DRRN and MS-LapSRN), so the block learns a
    residual of the same features at every step.
    """

    def __init__(self, block: nn.Module, times: int, shared_source: bool = False) -> None:
        super().__init__()
        if times < 1:
            raise ValueError(f"a recursion needs at least one step, got {times}")
        self.block = block
        self.times = times
        self.shared_source = shared_source

    def states(self, x: torch.Tensor) -> Iterator[torch.Tensor]:
        """The output of every recursion, first to last (DRCN supervises each of them)."""
        state = x
        for _ in range(self.times):
            state = self.block(state) + x if self.shared_source else self.block(state)
            yield state

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return deque(self.states(x), maxlen=1).pop()  # keep only the last state in memory

    def extra_repr(self) -> str:
        return f"times={self.times}, shared_source={self.shared_source}"


class SupervisedRecursion(nn.Module):
    """DRCN's network: embedding, a recursion, and one shared reconstruction of every recursion.

    Each recursion d gives a prediction `x + reconstruct(H_d)` (skip connection from the
    interpolated input); the output is their learned weighted sum, the weights starting at 1/D.
    Supervising every prediction (`predictions`) is what makes a 16-fold recursion trainable.
    """

    def __init__(self, embed: nn.Module, recursion: Recursive, reconstruct: nn.Module) -> None:
        super().__init__()
        self.embed = embed
        self.recursion = recursion
        self.reconstruct = reconstruct
        self.ensemble = nn.Parameter(torch.full((recursion.times,), 1.0 / recursion.times))

    def _predictions(self, x: torch.Tensor) -> Iterator[torch.Tensor]:
        for state in self.recursion.states(self.embed(x)):
            yield x + self.reconstruct(state)

    def predictions(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Every recursion's prediction, and the weighted sum of them (the output)."""
        predictions = list(self._predictions(x))
        return predictions, sum(w * p for w, p in zip(self.ensemble, predictions, strict=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Accumulate as we go: keeping all D predictions of a large image would cost D x memory.
        out = torch.zeros_like(x)
        for weight, prediction in zip(self.ensemble, self._predictions(x), strict=True):
            out = out + weight * prediction
        return out
