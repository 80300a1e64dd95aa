"""Inference wrappers that any model can take, stackable in any order:
`SelfEnsemble(Tiled(model, scale))`. Each passes `state_dict` through to the model it wraps,
so weights load the same way with or without wrappers.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
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


def tile_grid(length: int, tile: int, overlap: int) -> tuple[int, list[int]]:
    """(size, starts) of the fewest tiles of at most `tile` pixels, overlapping by at least
    `overlap`, that cover `length`: all of one size, evenly spread. (Tiles of exactly
    `tile` pixels would leave a last one mostly over its neighbour: 512 pixels in tiles of
    256 overlapping by 12 would take 3 x 256 pixels of work instead of 3 x 179.)"""
    if length <= tile:
        return length, [0]
    count = math.ceil((length - overlap) / (tile - overlap))
    size = math.ceil((length - overlap) / count) + overlap
    return size, [min(i * (size - overlap), length - size) for i in range(count)]


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
_BLEND = 4  # LR pixels of linear ramp between tiles whose context does not cover the model


def tile_context(model: nn.Module, channels: int) -> tuple[int, int]:
    """(pad, blend) for tiling `model`. Small models (up to a million parameters) get their
    measured receptive-field radius as context and no blend: tiles are then cut exactly.
    Deeper models see further than any affordable pad: 32 pixels and a 4-pixel ramp.
    A model whose probe would be slow (sparse coding solves a problem per patch) may state
    its own context as a `tile_context` attribute."""
    declared = getattr(model, "tile_context", None)
    if declared is not None:
        return declared
    if sum(p.numel() for p in model.parameters()) <= 1_000_000:
        pad = math.ceil(receptive_field(model, channels) / 2) + 1
        if pad <= _MAX_PAD:
            return pad, 0
    return _MAX_PAD, _BLEND


def default_pad(model: nn.Module, channels: int) -> int:
    """Context per tile edge: the receptive-field radius, measured for small models; deep
    models (over a million parameters) see further than any affordable pad, so take the cap."""
    return tile_context(model, channels)[0]


Region = tuple[slice, slice, torch.Tensor]


@dataclass(frozen=True)
class Cut:
    """One tile of an exact cut: the LR region the network runs on, and the part of it
    kept (at least `pad` pixels from the tile's inner edges)."""

    rows: slice
    cols: slice
    kept_rows: slice
    kept_cols: slice

    def crop(self, y: torch.Tensor, scale: int) -> torch.Tensor:
        """The kept part of the network's output on this tile (HR or phase planes)."""
        s = 1 if y.ndim == 5 else scale  # phase planes are LR-sized
        top, left = self.rows.start, self.cols.start
        return y[..., (self.kept_rows.start - top) * s : (self.kept_rows.stop - top) * s,
                 (self.kept_cols.start - left) * s : (self.kept_cols.stop - left) * s]


def cut_tiles(height: int, width: int, tile: tuple[int, int], pad: int) -> list[Cut]:
    """Tiles of at most tile[0] x tile[1] LR pixels overlapping by 2 * pad (`tile_grid`),
    each keeping what lies from `pad` past its start (the first from 0) to where the next
    one's kept part begins: every pixel is kept from exactly one tile."""
    (tile_h, rows), (tile_w, cols) = (tile_grid(height, tile[0], 2 * pad),
                                      tile_grid(width, tile[1], 2 * pad))

    def kept(starts: list[int], length: int) -> list[tuple[int, int]]:
        return list(itertools.pairwise([0, *(start + pad for start in starts[1:]), length]))

    return [Cut(slice(top, top + tile_h), slice(left, left + tile_w), slice(*row_kept),
                slice(*col_kept))
            for top, row_kept in zip(rows, kept(rows, height), strict=True)
            for left, col_kept in zip(cols, kept(cols, width), strict=True)]


def tiled_regions(
    run: Callable[[slice, slice], torch.Tensor], height: int, width: int, scale: int,
    tile: int | None, pad: int, blend: int,
) -> Iterator[Region]:
    """The output of a network over an LR image, piece by piece, in raster order, for
    memory bounded by the tile instead of the image.

    `run(rows, cols)` runs the network on that LR region and returns its output, either
    N x C x sh x sw or phase planes N x C x s^2 x h x w (see `Interpolate.phase_planes`).
    Yields (rows, cols, output) with every LR pixel in exactly one region and the output
    final there. With `blend` 0 the tiles are cut exactly (`cut_tiles`; exact when `pad`
    covers the receptive field); otherwise overlapping outputs are blended (see `Tiled`)
    and whole bands of rows are yielded.
    """
    shape = (height, width) if tile is None else (min(tile, height), min(tile, width))
    if tile is not None and tile <= 2 * pad + blend and (height > tile or width > tile):
        raise ValueError(f"tile {tile} must exceed 2 * pad + blend = {2 * pad + blend}")
    if blend == 0 or shape == (height, width):
        for cut in cut_tiles(height, width, shape, pad):
            yield cut.kept_rows, cut.kept_cols, cut.crop(run(cut.rows, cut.cols), scale)
    else:
        tile_h, rows = tile_grid(height, shape[0], 2 * pad + blend)
        tile_w, cols = tile_grid(width, shape[1], 2 * pad + blend)
        yield from _blended_bands(run, rows, cols, (height, width), (tile_h, tile_w), scale,
                                  pad, blend)


def _blended_bands(run: Callable[[slice, slice], torch.Tensor], rows: list[int],
                   cols: list[int], size: tuple[int, int], tile: tuple[int, int], scale: int,
                   pad: int, blend: int) -> Iterator[Region]:
    """Blend each row of tiles into an accumulator one tile high; yield the rows that no
    later tile touches, normalised by the total weight (a product of row and column sums)."""
    def profiles(starts: list[int], extent: int) -> list[torch.Tensor]:
        return [_profile(extent, scale, pad, blend, i == 0, i == len(starts) - 1)
                for i in range(len(starts))]

    row_weights, col_weights = profiles(rows, tile[0]), profiles(cols, tile[1])
    row_total, col_total = torch.zeros(size[0] * scale), torch.zeros(size[1] * scale)
    for start, weights in zip(rows, row_weights, strict=True):
        row_total[start * scale : (start + tile[0]) * scale] += weights
    for start, weights in zip(cols, col_weights, strict=True):
        col_total[start * scale : (start + tile[1]) * scale] += weights
    accumulator: torch.Tensor | None = None
    base = 0  # LR row of the accumulator's first row
    for i, top in enumerate(rows):
        for left, weights in zip(cols, col_weights, strict=True):
            y = run(slice(top, top + tile[0]), slice(left, left + tile[1]))
            if y.ndim == 5:
                y = F.pixel_shuffle(y.flatten(1, 2), scale)
            if accumulator is None:
                accumulator = y.new_zeros((*y.shape[:2], tile[0] * scale, size[1] * scale))
            # rows above `base` were yielded already; this tile's weight there is zero
            skip = (base - top) * scale
            weight = (row_weights[i][skip:, None] * weights[None, :]).to(y)
            accumulator[..., : tile[0] * scale - skip,
                        left * scale : (left + tile[1]) * scale] += y[..., skip:, :] * weight
        done = rows[i + 1] + pad if i + 1 < len(rows) else size[0]
        assert accumulator is not None
        finished = slice(0, (done - base) * scale)
        total = row_total[base * scale : done * scale, None] * col_total[None, :]
        yield slice(base, done), slice(0, size[1]), accumulator[..., finished, :] / total.to(
            accumulator)
        kept = (top + tile[0] - done) * scale
        accumulator[..., :kept, :] = accumulator[..., finished.stop : finished.stop + kept,
                                                 :].clone()
        accumulator[..., kept:, :] = 0
        base = done


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
        blend: int = _BLEND, channels: int = 1,
    ) -> None:
        super().__init__(model)
        if pad is None:
            pad = default_pad(model, channels)
        if tile <= 2 * pad + blend:
            raise ValueError(f"tile {tile} must exceed 2 * pad + blend = {2 * pad + blend}")
        self.scale, self.tile, self.pad, self.blend = scale, tile, pad, blend

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        s = self.scale
        out: torch.Tensor | None = None
        for rows, cols, y in tiled_regions(lambda r, c: self.model(x[..., r, c]), height, width,
                                           s, self.tile, self.pad, self.blend):
            if out is None:
                out = y.new_empty((*y.shape[:-2], height * s, width * s))
            out[..., rows.start * s : rows.stop * s, cols.start * s : cols.stop * s] = y
        assert out is not None
        return out
