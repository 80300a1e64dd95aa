"""Inference wrappers that any model can take, stackable in any order:
`SelfEnsemble(Tiled(model, scale))`. Each passes `state_dict` through to the model it wraps,
so weights load the same way with or without wrappers.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import nn

from superres.nn.layers import receptive_field


class Wrapper(nn.Module):
    """A module around `model` whose state dict is the model's own."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return self.model.state_dict(*args, **kwargs)

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False
    ) -> Any:
        return self.model.load_state_dict(state_dict, strict=strict, assign=assign)


class SelfEnsemble(Wrapper):
    """Geometric self-ensemble (EDSR's "+" models): run the model on the 8 flips/rotations
    of the input, undo each transform on the output, and average. About +0.05 dB, 8x time."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = None
        for turns in range(4):
            for flip in (False, True):
                y = torch.rot90(x.flip(-1) if flip else x, turns, dims=(-2, -1))
                y = torch.rot90(self.model(y), -turns, dims=(-2, -1))
                y = y.flip(-1) if flip else y
                total = y if total is None else total + y
        return total / 8


def _tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Tile origins along one axis: stride tile - overlap, the last tile flush with the end."""
    if length <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, length - tile, stride))
    return [*starts, length - tile]


def _profile(
    length: int, scale: int, pad: int, blend: int, first: bool, last: bool
) -> torch.Tensor:
    """1-D weights of one tile's output along one axis: zero within `pad` LR pixels of an
    inner tile edge (where the tile lacks context), a linear ramp over `blend` pixels, then 1.
    Edges on the image border keep weight 1: there the tile sees what the whole image sees."""
    weights = torch.ones(length * scale)
    ramp = torch.arange(1, blend * scale + 1, dtype=torch.float32) / (blend * scale + 1)
    zero, ramp_end = pad * scale, (pad + blend) * scale
    if not first:
        weights[:zero] = 0
        weights[zero:ramp_end] = ramp
    if not last:
        weights[weights.numel() - zero :] = 0
        weights[weights.numel() - ramp_end : weights.numel() - zero] = ramp.flip(0)
    return weights


_MAX_PAD = 32  # LR pixels of context per tile edge; deeper models rely on the blend beyond it


def default_pad(model: nn.Module, channels: int) -> int:
    """Context per tile edge: the receptive-field radius, measured for small models; deep
    models (over a million parameters) see further than any affordable pad, so take the cap."""
    if sum(p.numel() for p in model.parameters()) > 1_000_000:
        return _MAX_PAD
    return min(math.ceil(receptive_field(model, channels) / 2) + 1, _MAX_PAD)


class Tiled(Wrapper):
    """Run `model` on overlapping LR tiles and blend their outputs, so any image size fits in
    bounded memory without seams.

    Each tile carries `pad` LR pixels of context on every inner edge; outputs there get zero
    weight, then a linear ramp over `blend` pixels joins neighbours. With `pad` at least the
    model's receptive-field radius the result equals whole-image inference up to rounding;
    for deeper models the blend hides what remains.
    """

    def __init__(
        self, model: nn.Module, scale: int, tile: int = 256, pad: int | None = None,
        blend: int = 4, channels: int = 1,
    ) -> None:
        super().__init__(model)
        if pad is None:
            pad = default_pad(model, channels)
        if tile <= 2 * pad + blend:
            raise ValueError(f"tile {tile} must exceed 2 * pad + blend = {2 * pad + blend}")
        self.scale, self.tile, self.pad, self.blend = scale, tile, pad, blend

    def tiles(self, height: int, width: int) -> Iterator[tuple[int, int, bool, bool, bool, bool]]:
        """(top, left, first_row, last_row, first_col, last_col) of every tile."""
        overlap = 2 * self.pad + self.blend
        rows = _tile_starts(height, self.tile, overlap)
        cols = _tile_starts(width, self.tile, overlap)
        for i, top in enumerate(rows):
            for j, left in enumerate(cols):
                yield top, left, i == 0, i == len(rows) - 1, j == 0, j == len(cols) - 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        if height <= self.tile and width <= self.tile:
            return self.model(x)
        s, t = self.scale, self.tile
        out = weight_sum = None
        weights: dict[tuple, torch.Tensor] = {}  # one weight map per tile geometry
        for top, left, *edges in self.tiles(height, width):
            patch = x[..., top : top + t, left : left + t]
            y = self.model(patch)
            if out is None:
                out = y.new_zeros((*y.shape[:-2], height * s, width * s))
                weight_sum = y.new_zeros((height * s, width * s))
            key = (*patch.shape[-2:], *edges)
            if key not in weights:
                rows = _profile(patch.shape[-2], s, self.pad, self.blend, edges[0], edges[1])
                cols = _profile(patch.shape[-1], s, self.pad, self.blend, edges[2], edges[3])
                weights[key] = (rows[:, None] * cols[None, :]).to(y)
            weight = weights[key]
            rows_out = slice(top * s, top * s + y.shape[-2])
            cols_out = slice(left * s, left * s + y.shape[-1])
            out[..., rows_out, cols_out] += y * weight
            weight_sum[rows_out, cols_out] += weight
        return out / weight_sum
