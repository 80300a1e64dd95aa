"""Temporal consistency of an upscaled video: the warping error between consecutive output
frames under the ground truth's optical flow, beside PSNR, which judges frames one by one.

The flow is the ground truth's, estimated by a classical method (dense Lucas and Kanade, "An
Iterative Image Registration Technique", IJCAI 1981, coarse to fine with warping), so every model
is judged against the same motion. Where that flow does not explain the ground truth itself
(occlusions, new content at the borders, the estimator's failures: the warped previous GT
frame differs from the current one by more than `GT_TOLERANCE`), pixels are left out.

warp error = 1000 x mean over the kept pixels of (Y_t - warp(Y_t-1))^2, Y in [0, 1] (BT.601
studio swing, as PSNR is measured). A flickering model scores high; the ground truth itself
scores what the mask lets through (a small floor).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from superres.metrics.protocol import to_y
from superres.nn.alignment import flow_warp

GT_TOLERANCE = 10 / 255  # largest |GT_t - warp(GT_t-1)| (Y in [0, 1]) where the flow holds
_MIN_DETERMINANT = 1e-9  # windows flatter than this keep the coarser level's flow


def estimate_flow(reference: torch.Tensor, moving: torch.Tensor, *, levels: int = 5,
                  warps: int = 2, window: int = 15) -> torch.Tensor:
    """The flow (1 x 2 x H x W, pixels) that brings `moving` onto `reference` (both
    1 x 1 x H x W in [0, 1]) under `flow_warp`: dense Lucas-Kanade on an image pyramid, each
    level re-linearised `warps` times around the current flow, motion constant over a
    `window` x `window` neighbourhood."""
    pyramid = [(reference, moving)]
    for _ in range(levels - 1):
        ref, mov = pyramid[-1]
        if min(ref.shape[-2:]) < 4 * window:
            break
        pyramid.append((F.avg_pool2d(ref, 2), F.avg_pool2d(mov, 2)))
    flow = torch.zeros(1, 2, *pyramid[-1][0].shape[-2:])
    for ref, mov in reversed(pyramid):
        if flow.shape[-2:] != ref.shape[-2:]:
            flow = 2 * F.interpolate(flow, size=ref.shape[-2:], mode="bilinear",
                                     align_corners=False)
        for _ in range(warps):
            flow = flow + _lucas_kanade(ref, flow_warp(mov, flow), window)
    return flow


def _gradients(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    padded = F.pad(image, (1, 1, 1, 1), mode="replicate")
    dx = (padded[..., 1:-1, 2:] - padded[..., 1:-1, :-2]) / 2
    dy = (padded[..., 2:, 1:-1] - padded[..., :-2, 1:-1]) / 2
    return dx, dy


def _lucas_kanade(reference: torch.Tensor, warped: torch.Tensor, window: int) -> torch.Tensor:
    """The flow increment that best explains `warped` - `reference` by the local gradients,
    in the least-squares sense over each window (no update where the window has no
    texture to tell the motion by, and at most one pixel per step)."""
    dx, dy = _gradients((warped + reference) / 2)
    dt = warped - reference
    products = torch.cat([dx * dx, dx * dy, dy * dy, dx * dt, dy * dt], 1)
    half = window // 2
    padded = F.pad(products, (half,) * 4, mode="replicate")
    sums = F.avg_pool2d(F.avg_pool2d(padded, (1, window), stride=1), (window, 1), stride=1)
    sxx, sxy, syy, sxt, syt = sums.split(1, dim=1)
    determinant = sxx * syy - sxy.square()
    textured = determinant > _MIN_DETERMINANT
    safe = torch.where(textured, determinant, torch.ones_like(determinant))
    du = torch.where(textured, (sxy * syt - syy * sxt) / safe, torch.zeros_like(safe))
    dv = torch.where(textured, (sxy * sxt - sxx * syt) / safe, torch.zeros_like(safe))
    return torch.cat([du, dv], 1).clamp(-1, 1)


class WarpingError:
    """Accumulates the warping error of consecutive SR frames of one sequence under the
    ground truth's flow: feed frames in order with `add`, read `value`."""

    def __init__(self) -> None:
        self.previous: tuple[torch.Tensor, torch.Tensor] | None = None
        self.errors: list[float] = []

    def add(self, sr: np.ndarray, hr: np.ndarray) -> None:
        """The next uint8 SR frame and its uint8 ground truth (same size)."""
        sr_y, hr_y = (torch.from_numpy(to_y(x) / 255).float()[None, None] for x in (sr, hr))
        if self.previous is not None:
            sr_prev, hr_prev = self.previous
            flow = estimate_flow(hr_y, hr_prev)
            inside = _inside(flow)
            kept = inside & ((flow_warp(hr_prev, flow) - hr_y).abs() < GT_TOLERANCE)
            difference = (flow_warp(sr_prev, flow) - sr_y).square()
            if kept.any():
                self.errors.append(1000 * float(difference[kept].mean()))
        self.previous = sr_y, hr_y

    @property
    def value(self) -> float:
        """Mean over the frame pairs seen (NaN for fewer than two frames)."""
        return float(np.mean(self.errors)) if self.errors else float("nan")


def _inside(flow: torch.Tensor) -> torch.Tensor:
    """Pixels whose flow lands inside the frame (1 x 1 x H x W booleans)."""
    height, width = flow.shape[-2:]
    cols = torch.arange(width).view(1, 1, width) + flow[:, 0]
    rows = torch.arange(height).view(1, height, 1) + flow[:, 1]
    return ((cols >= 0) & (cols <= width - 1) & (rows >= 0) & (rows <= height - 1))[:, None]
