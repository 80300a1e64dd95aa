"""PSNR and SSIM exactly as the SR literature measures them.

The protocol (RCAN's and BasicSR's scripts, Wang et al.'s `ssim_index.m`): compare the
uint8 SR image with the modcropped uint8 HR image on the BT.601 Y channel (16..235, kept
as float), after shaving `scale` pixels from every border; PSNR with peak 255; SSIM with an
11x11 Gaussian window (sigma 1.5), K = (0.01, 0.03), 'valid' filtering, mean of the map.
A single-channel image is measured on its raw intensity, as the MATLAB scripts do.

Perceptual SR is judged by more than fidelity: `ImageMetric`s (the VGG feature distance in
`superres.metrics.perceptual`, NIQE in `superres.metrics.niqe`) can be measured beside
PSNR/SSIM in the same pass (`superres.evaluation`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from superres.image.color import rgb_to_y
from superres.image.degrade import modcrop

Channel = Literal["y", "rgb"]


def to_y(image: np.ndarray) -> np.ndarray:
    """uint8 H x W x C image -> float64 H x W Y in 0..255 (gray images: raw intensity)."""
    if image.ndim == 2:
        return image.astype(np.float64)
    if image.shape[2] == 1:
        return image[..., 0].astype(np.float64)
    return rgb_to_y(image.astype(np.float64) / 255.0)[..., 0] * 255.0


def shave(image: np.ndarray, border: int) -> np.ndarray:
    """Drop `border` pixels on every side (SR papers shave `scale` pixels)."""
    if border == 0:
        return image
    if min(image.shape[:2]) <= 2 * border:
        raise ValueError(f"image of size {image.shape[:2]} is too small to shave {border} px")
    return image[border:-border, border:-border]


def psnr(sr: np.ndarray, hr: np.ndarray, peak: float = 255.0) -> float:
    """PSNR in dB of two same-shape float arrays in 0..peak (inf when identical)."""
    if sr.shape != hr.shape:
        raise ValueError(f"shape mismatch: {sr.shape} vs {hr.shape}")
    mse = np.mean((sr.astype(np.float64) - hr.astype(np.float64)) ** 2)
    return math.inf if mse == 0 else 10 * math.log10(peak**2 / mse)


def gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    """1-D factor of MATLAB `fspecial('gaussian', size, sigma)` (2-D = outer product)."""
    x = np.arange(size) - (size - 1) / 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def filter_valid(image: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Separable 'valid' correlation with the outer product of `window` with itself."""
    rows = sliding_window_view(image, window.size, axis=0) @ window
    return sliding_window_view(rows, window.size, axis=1) @ window


def ssim(sr: np.ndarray, hr: np.ndarray, peak: float = 255.0) -> float:
    """SSIM of two same-shape 2-D float arrays in 0..peak, as `ssim_index.m` (Wang et al. 2004)."""
    if sr.shape != hr.shape or sr.ndim != 2:
        raise ValueError(f"expected two same-shape 2-D arrays, got {sr.shape} and {hr.shape}")
    if min(sr.shape) < 11:
        raise ValueError(f"SSIM needs at least 11x11 pixels, got {sr.shape}")
    x, y = sr.astype(np.float64), hr.astype(np.float64)
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    window = gaussian_window()
    mu_x, mu_y = filter_valid(x, window), filter_valid(y, window)
    var_x = filter_valid(x * x, window) - mu_x**2
    var_y = filter_valid(y * y, window) - mu_y**2
    cov = filter_valid(x * y, window) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / (
        (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    )
    return float(ssim_map.mean())


@dataclass(frozen=True)
class Score:
    """PSNR (dB) and SSIM of one image."""

    psnr: float
    ssim: float


def score(sr: np.ndarray, hr: np.ndarray, scale: int, channel: Channel = "y",
          border: int | None = None) -> Score:
    """Measure a uint8 SR image against its uint8 HR image with the standard protocol.

    `hr` is modcropped here when needed; `sr` must have the modcropped HR size.
    `channel="rgb"` measures all colour channels (PSNR of the pooled MSE, mean SSIM).
    `border`: pixels shaved at each edge, `scale` by default (video sets: 0, see
    `superres.evaluation`).
    """
    if sr.dtype != np.uint8 or hr.dtype != np.uint8:
        raise TypeError(f"expected uint8 images (quantise SR first), got {sr.dtype}, {hr.dtype}")
    hr = modcrop(hr, scale)
    if sr.shape[:2] != hr.shape[:2]:
        raise ValueError(f"SR size {sr.shape[:2]} != modcropped HR size {hr.shape[:2]}")
    if channel == "y":
        planes = [(to_y(sr), to_y(hr))]
    elif channel == "rgb":
        sr3, hr3 = np.atleast_3d(sr), np.atleast_3d(hr)
        planes = [(sr3[..., c].astype(np.float64), hr3[..., c]) for c in range(sr3.shape[2])]
    else:
        raise ValueError(f"channel must be 'y' or 'rgb', got {channel!r}")
    border = scale if border is None else border
    planes = [(shave(a, border), shave(b, border)) for a, b in planes]
    stacked_sr = np.stack([a for a, _ in planes])
    stacked_hr = np.stack([b for _, b in planes])
    return Score(
        psnr=psnr(stacked_sr, stacked_hr),
        ssim=float(np.mean([ssim(a, b) for a, b in planes])),
    )


# ----------------------------------------------------------------------------- perceptual


class ImageMetric(Protocol):
    """A measure of one SR image besides PSNR/SSIM, for perceptual SR: `name` is its key in
    reports; it is called with the uint8 SR image, the modcropped uint8 HR image and the
    scale, and measures them with `scale` border pixels shaved, as PSNR is."""

    name: str

    def __call__(self, sr: np.ndarray, hr: np.ndarray, scale: int) -> float: ...
