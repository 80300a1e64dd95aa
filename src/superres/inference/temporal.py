"""Frames in windows: how a video model sees a sequence, for files and benchmarks alike.

The rule: output frame t is upscaled from frames t-r..t+r (r = the model's `radius`; a window
of 2r + 1 frames), and where that runs past either end of the sequence the first or last
frame stands in (edge frames replicated: frame 0 of a 3-frame model sees frames 0, 0, 1).
Windows are made as frames arrive, holding at most 2r + 1 of them, so memory is bounded
whatever the length. Image models have r = 0: a window is the frame itself.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Generic, TypeVar

import numpy as np
import torch

from superres.image.color import rgb_to_y

if TYPE_CHECKING:
    from superres.inference.upscaler import Upscaler

Item = TypeVar("Item")


class TemporalWindows(Generic[Item]):
    """Push frames in order; take each complete window as soon as its last frame arrives,
    and the remaining ones (end frame replicated) from `finish`."""

    def __init__(self, radius: int) -> None:
        if radius < 0:
            raise ValueError(f"a temporal radius is 0 or more frames, not {radius}")
        self.radius = radius
        self.buffer: deque[Item] = deque(maxlen=2 * radius + 1)
        self.pending = 0  # frames pushed whose window is not out yet

    def push(self, item: Item) -> list[tuple[Item, ...]]:
        """Add the next frame; the windows it completes (none, or one)."""
        if not self.buffer:  # the first frame stands in for the r frames before it
            self.buffer.extend([item] * self.radius)
        self.buffer.append(item)
        self.pending += 1
        if len(self.buffer) < self.buffer.maxlen:  # type: ignore[operator]
            return []
        self.pending -= 1
        return [tuple(self.buffer)]

    def finish(self) -> list[tuple[Item, ...]]:
        """The windows of the last frames, the last frame repeated past the end."""
        windows = []
        while self.pending:
            self.buffer.append(self.buffer[-1])
            if len(self.buffer) == self.buffer.maxlen:
                windows.append(tuple(self.buffer))
                self.pending -= 1
        return windows


def temporal_windows(frames: Iterable[Item], radius: int) -> Iterator[tuple[Item, ...]]:
    """The window of every frame of `frames`, in order (see the module's rule)."""
    windows: TemporalWindows[Item] = TemporalWindows(radius)
    for frame in frames:
        yield from windows.push(frame)
    yield from windows.finish()


def upscale_window(upscaler: Upscaler, window: Sequence[np.ndarray]) -> np.ndarray:
    """The upscaled centre frame of `window` (2r + 1 frames of H x W x 3 uint8): an image
    model upscales the centre frame alone; a video model sees the Y channels of all and the
    chroma of the centre frame is upscaled with bicubic, as for Y-channel image models."""
    radius = upscaler.spec.radius
    if len(window) != 2 * radius + 1:
        raise ValueError(f"{upscaler.name} upscales a window of {2 * radius + 1} frames, "
                         f"not {len(window)}")
    centre = window[radius]
    if radius == 0:
        return upscaler.upscale(centre)
    if any(f.shape != centre.shape or f.dtype != np.uint8 or f.ndim != 3 or f.shape[2] != 3
           for f in window):
        raise ValueError("a video model takes frames of one size, H x W x 3 uint8")
    rgb = torch.from_numpy(np.stack(window)).permute(0, 3, 1, 2).float().div(255)
    with torch.no_grad():
        y = rgb_to_y(rgb)  # T x 1 x H x W
        # the frames as channels, 1 x T x H x W, whole (a video model is not tiled)
        sr = upscaler.model(y.permute(1, 0, 2, 3).to(upscaler.device, upscaler.dtype)).float()
        # RGB = L + (RGB - L), the colour differences upscaled with bicubic (exact MATLAB)
        chroma = upscaler.bicubic((rgb[radius] - _full_range(y[radius]))[None].to(
            upscaler.device))
        out = (_full_range(sr) + chroma).clamp(0, 1)
    return out[0].mul(255).round().byte().permute(1, 2, 0).cpu().numpy()


def _full_range(y: torch.Tensor) -> torch.Tensor:
    """The full-range luma L of a studio-swing Y channel, L = 255/219 (Y - 16/255)."""
    return (y - 16 / 255) * (255 / 219)
