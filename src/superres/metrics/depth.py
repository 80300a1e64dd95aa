"""The depth SR measure: RMSE on the 0-255 disparity scale, as the Middlebury papers report."""

from __future__ import annotations

import numpy as np


def rmse_255(sr: np.ndarray, hr: np.ndarray) -> float:
    """RMSE between two maps in [0, 1], both rounded to 8 bits (0-255) first, over the whole
    map: no border is cropped, as PMBANet's evaluation script computes it."""
    if np.shape(sr) != np.shape(hr):
        raise ValueError(f"SR map {np.shape(sr)} and ground truth {np.shape(hr)} differ in size")
    sr_8 = np.clip(np.round(np.asarray(sr, dtype=np.float64) * 255), 0, 255)
    hr_8 = np.clip(np.round(np.asarray(hr, dtype=np.float64) * 255), 0, 255)
    return float(np.sqrt(np.mean((sr_8 - hr_8) ** 2)))
