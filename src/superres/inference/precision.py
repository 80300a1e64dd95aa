"""Half precision (float16, bfloat16) for a network only where it is safe: checked once on a
probe image against float32, with a fall back to float32 and a warning otherwise.

Half precision halves the activation memory and is fast on GPUs. On CPUs without native
half arithmetic it is much slower than float32 (about 6x for ESPCN on an AVX2 machine,
see docs/inference.md): there it is a memory measure, not a speed one.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import torch
from torch import nn

PRECISIONS = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
TOLERANCE = 1 / 255  # largest difference to float32 on the probe: one 8-bit level


def probe_input(channels: int, device: torch.device) -> torch.Tensor:
    """1 x C x 64 x 96: the built-in test chart (lines, zone plate, text, colour edges,
    gradients) as RGB, or its BT.601 Y for one channel, in [0, 1]."""
    from superres.image.color import rgb_to_y
    from superres.image.sample import sample_image

    rgb = torch.from_numpy(np.asarray(sample_image(96, 64), dtype=np.float32) / 255)
    rgb = rgb.permute(2, 0, 1)[None]
    return (rgb_to_y(rgb) if channels == 1 else rgb).contiguous().to(device)


def half_model(model: nn.Module, dtype: torch.dtype, channels: int, device: torch.device
               ) -> nn.Module | None:
    """A copy of `model` in `dtype` if its output on the probe is finite and within
    TOLERANCE of float32; None (with a warning saying why) otherwise."""
    probe = probe_input(channels, device)
    with torch.inference_mode():
        reference = model(probe)
        half = copy.deepcopy(model).to(dtype)
        try:
            out = half(probe.to(dtype)).float()
        except RuntimeError as err:  # an operation without a half kernel on this device
            return _refuse(dtype, f"it does not run there ({err})")
    if not torch.isfinite(out).all():
        return _refuse(dtype, "its output overflows (inf or NaN) on a test image")
    difference = float((out - reference).abs().max())
    if difference > TOLERANCE:
        return _refuse(dtype, f"its output differs from float32 by {difference * 255:.1f} "
                              "8-bit levels on a test image (limit 1)")
    return half


def _refuse(dtype: torch.dtype, why: str) -> None:
    name = str(dtype).removeprefix("torch.")
    warnings.warn(f"{name} is not safe for this model: {why}; running in float32",
                  stacklevel=3)
    return None
