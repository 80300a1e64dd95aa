"""Upscaling straight into a preallocated output, tile by tile: memory bounded by the tile,
not the image, and the colour work done where it is cheapest.

A tile of the LR image becomes floats, goes through the network, and the part of it that is
final is finished at once, a few rows at a time: the colour added back, scaled, rounded and
written into the output (uint8, uint16 or float) in its place. No float buffer ever spans
the image, only a tile (a band of tiles for deep models whose tiles are blended).

For Y-channel models the colour comes back through the identity RGB = L + (RGB - L), with
L = 255/219 (Y - 16/255) the full-range luma. MATLAB's ycbcr2rgb weighs Y by 255/219 in
all three rows, and bicubic is linear and keeps constants, so

    ycbcr2rgb(network(Y), bicubic(Cb), bicubic(Cr)) = L(network(Y)) + bicubic(RGB - L)

exactly, up to float rounding: the chroma is still the exact MATLAB bicubic, but it is
upscaled already as the three colour differences, and finishing a pixel costs one addition
per channel. Both terms are computed as phase planes (LR-sized, one plane per sub-pixel
position) when the network ends in a pixel shuffle, so the shuffle happens once, on the
way into the output.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal, Protocol

import torch

from superres.image.color import rgb_to_y
from superres.inference.tiles import Cut, cut_tiles, tiled_regions
from superres.nn.upsamplers import Interpolate

# How the network's channels relate to the image's (see `Streamer`).
ChannelRoute = Literal["luma", "direct", "mean"]

_LUMA_GAIN = 255 / 219  # studio-swing Y (16..235) to full-range luma
_Y_OFFSET = 16 / 255
_CHUNK = 1 << 20  # output samples finished at a time (4 MB of floats): fewer, larger calls
_CONTEXT = 2  # LR pixels either side that the bicubic kernel reaches


class Sink(Protocol):
    """Where finished pixels go when the output is not one tensor (a Pillow image, a file
    being encoded). `write` may be called from several tile workers at once."""

    shape: tuple[int, ...]  # N x sH x sW x C
    dtype: torch.dtype

    def write(self, top: int, left: int, pixels: torch.Tensor) -> None:
        """Take N x h x w x C finished pixels for rows top.. and columns left.."""

    def restart(self) -> None:
        """Forget what was written: the image is written anew (after running out of
        memory, with smaller tiles)."""


@dataclass
class Streamer:
    """Runs `net` over an image tile by tile and finishes each piece into the output.

    `route` says what the network sees: "luma" (a Y-channel model on an RGB image: Y in,
    colour differences by bicubic), "direct" (its output is the image), or "mean" (an RGB
    model on a gray image: gray in as RGB, the mean of its output out). `net` returns
    N x C x sh x sw, or phase planes N x C x s^2 x h x w (see `Interpolate.phase_planes`).
    """

    net: Callable[[torch.Tensor], torch.Tensor]
    scale: int
    route: ChannelRoute
    tile: int | None
    pad: int
    blend: int
    device: torch.device | str = "cpu"
    dtype: torch.dtype = torch.float32
    # Tile workers for cut tiles; None: torch.get_num_threads(); 1: the tiles in turn on the
    # calling thread, each operation on all threads (an untiled image is then one job).
    workers: int | None = None

    def __post_init__(self) -> None:
        self.bicubic = Interpolate(self.scale).to(self.device)

    @torch.no_grad()  # not inference_mode: ZSSR and DIP switch gradients back on inside
    def run(self, src: torch.Tensor, out: torch.Tensor | Sink) -> None:
        """Upscale `src` (N x H x W x C, any strides: a NumPy image shares its memory) into
        `out` (N x sH x sW x C, the same dtype, or a Sink). Integers are full-scale (255
        for uint8, 65535 for uint16) and rounded; floats are in [0, 1].

        Exactly cut tiles run on `workers` threads of one PyTorch thread each: a whole tile
        per worker has far fewer synchronisation points than every operation split across
        threads, which matters on a busy machine. Blended tiles run in order, each operation
        on all threads.
        """
        n, height, width, channels = src.shape
        s = self.scale
        if tuple(out.shape) != (n, height * s, width * s, channels) or out.dtype != src.dtype:
            raise ValueError(f"output {tuple(out.shape)} {out.dtype} does not fit input "
                             f"{tuple(src.shape)} {src.dtype} at scale {s}")
        integer = not src.dtype.is_floating_point
        self._peak = float(torch.iinfo(src.dtype).max) if integer else 1.0
        self._round = 0.5 if integer else 0.0  # + 0.5, clamp, truncate: round half up
        shape = (height, width) if self.tile is None else (min(self.tile, height),
                                                           min(self.tile, width))
        if self.blend and shape != (height, width):
            scratch: dict[str, torch.Tensor] = {}
            for rows, cols, y in tiled_regions(lambda r, c: self._network(src, r, c), height,
                                               width, s, self.tile, self.pad, self.blend):
                self._finish(src, y, rows, cols, out, scratch)
            return
        workers = self.workers or torch.get_num_threads()
        if workers > 1 and len(cut_tiles(height, width, shape, self.pad)) < workers:
            rows = min(shape[0], -(-height // workers) + 2 * self.pad)  # a tile per worker
            shape = (rows, shape[1])
        cuts = cut_tiles(height, width, shape, self.pad)
        if workers == 1 or len(cuts) == 1:
            for cut in cuts:
                self._cut(src, out, cut)
            return
        threads = torch.get_num_threads()
        with ThreadPoolExecutor(workers, initializer=torch.set_num_threads,
                                initargs=(1,)) as pool:
            # Tiles are handed out in raster order, a few ahead of the first unfinished one:
            # rows finish nearly in order (a sink encoding a file holds about one row of
            # tiles), and a tile that fails stops the image instead of all the tiles after it.
            running: deque[Future[None]] = deque()
            try:
                for cut in cuts:
                    if len(running) == 2 * workers:
                        running.popleft().result()
                    running.append(pool.submit(self._cut, src, out, cut))
                while running:
                    running.popleft().result()
            finally:
                for job in running:
                    job.cancel()
        torch.set_num_threads(threads)  # the workers' setting is also the global default

    @torch.no_grad()
    def _cut(self, src: torch.Tensor, out: torch.Tensor | Sink, cut: Cut) -> None:
        """Run the network on one tile and finish the part of it that it keeps."""
        y = cut.crop(self._network(src, cut.rows, cut.cols), self.scale)
        self._finish(src, y, cut.kept_rows, cut.kept_cols, out, {})

    def _network(self, src: torch.Tensor, rows: slice, cols: slice) -> torch.Tensor:
        """The network's output on an LR region (HR or phase planes), float32."""
        lr = self._read(src, rows, cols)
        x = rgb_to_y(lr) if self.route == "luma" else lr
        if self.route == "mean":
            x = x.expand(-1, 3, -1, -1)
        y = self.net(x.to(self.dtype)).float()
        return y.mean(dim=1, keepdim=True) if self.route == "mean" else y

    def _read(self, src: torch.Tensor, rows: slice, cols: slice) -> torch.Tensor:
        """The LR region as floats in [0, 1], N x C x h x w (channels last)."""
        region = src[:, rows, cols, :].to(self.device, torch.float32)
        if not src.dtype.is_floating_point:
            region = region.mul_(1 / self._peak)
        return region.permute(0, 3, 1, 2)

    def _finish(self, src: torch.Tensor, y: torch.Tensor, rows: slice, cols: slice,
                out: torch.Tensor | Sink, scratch: dict[str, torch.Tensor]) -> None:
        """Write the final pixels of the LR region rows x cols, whose network output is `y`,
        a few rows at a time so that the working floats stay in cache."""
        s, n, channels = self.scale, out.shape[0], out.shape[-1]
        width = cols.stop - cols.start
        step = max(1, _CHUNK // (n * width * s * s * channels))
        for top in range(rows.start, rows.stop, step):
            bottom = min(top + step, rows.stop)
            part = slice(top - rows.start, bottom - rows.start)
            pixels = _pixels(y[..., part, :] if y.ndim == 5
                             else y[..., part.start * s : part.stop * s, :], s)
            finished = _scratch(scratch, "finished", (*pixels.shape[:-1], channels), y.device)
            if self.route == "luma":
                self._add_colour(src, slice(top, bottom), cols, pixels, finished, scratch)
            else:
                torch.mul(pixels, self._peak, out=finished).add_(self._round)
            finished.clamp_(0, self._peak)
            if isinstance(out, torch.Tensor):
                target = out[:, top * s : bottom * s, cols.start * s : cols.stop * s, :]
                _shuffled(target, s).copy_(finished)
            else:  # a sink: hand it the finished pixels in its own layout
                region = _scratch(scratch, "region", (n, (bottom - top) * s, width * s, channels),
                                  torch.device("cpu"), out.dtype)
                _shuffled(region, s).copy_(finished)
                out.write(top * s, cols.start * s, region)

    def _add_colour(self, src: torch.Tensor, rows: slice, cols: slice, luma_y: torch.Tensor,
                    finished: torch.Tensor, scratch: dict[str, torch.Tensor]) -> None:
        """finished[..., c] = L(network Y) + bicubic(RGB - L)[c], in output units."""
        height, width = src.shape[1:3]
        gain = _LUMA_GAIN * self._peak
        luma = _scratch(scratch, "luma", luma_y.shape[:-1], finished.device)
        torch.mul(luma_y[..., 0], gain, out=luma).add_(self._round - _Y_OFFSET * gain)
        above, left = min(_CONTEXT, rows.start), min(_CONTEXT, cols.start)
        lr = self._read(src, slice(rows.start - above, min(rows.stop + _CONTEXT, height)),
                        slice(cols.start - left, min(cols.stop + _CONTEXT, width)))
        differences = (lr - (rgb_to_y(lr) - _Y_OFFSET) * _LUMA_GAIN).mul_(self._peak)
        planes = self.bicubic.phase_planes(differences)
        planes = planes[..., above : above + rows.stop - rows.start,
                        left : left + cols.stop - cols.start]
        for c in range(3):
            torch.add(luma, _pixels(planes[:, c : c + 1], self.scale)[..., 0],
                      out=finished[..., c])


def _scratch(buffers: dict[str, torch.Tensor], name: str, shape: tuple[int, ...],
             device: torch.device, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A view of a buffer kept across the chunks of a tile: no allocation per chunk."""
    size = int(torch.Size(shape).numel())
    buffer = buffers.get(name)
    if buffer is None or buffer.numel() < size:
        buffer = buffers[name] = torch.empty(size, device=device, dtype=dtype)
    return buffer[:size].view(shape)


def _shuffled(target: torch.Tensor, scale: int) -> torch.Tensor:
    """N x sh x sw x C output pixels viewed as N x h x w x s x s x C (sub-pixel last)."""
    return target.unflatten(1, (-1, scale)).unflatten(3, (-1, scale)).permute(0, 1, 3, 2, 4, 5)


def _pixels(y: torch.Tensor, scale: int) -> torch.Tensor:
    """N x h x w x s x s x C view of a network output for an LR region h x w, from either
    N x C x sh x sw or phase planes N x C x s^2 x h x w."""
    if y.ndim == 5:
        return y.unflatten(2, (scale, scale)).permute(0, 4, 5, 2, 3, 1)
    return y.unflatten(2, (-1, scale)).unflatten(4, (-1, scale)).permute(0, 2, 4, 3, 5, 1)
