"""Interpolation baselines (nearest, bilinear, bicubic, lanczos), registered like any model.

Interpolation runs as a network module (`superres.nn.upsamplers.Interpolate`), so classic
upscalers go through the same pipeline as networks. For an integer upscaling factor, MATLAB's
`imresize` is a polyphase filter: output pixel s*k + r is a fixed weighted sum of input pixels
k-2..k+2 (cubic) that depends only on the phase r. So it is one small convolution with s^2
output channels and a pixel shuffle, on the input padded symmetrically (MATLAB mirrors indices
the same way). That is exact, several times faster than gathering rows and columns, and
exports to ONNX with dynamic sizes.
"""

from __future__ import annotations

from functools import partial

from superres.models.registry import ModelSpec
from superres.nn.upsamplers import Interpolate

_SCALES = (2, 3, 4, 6, 8)
_MATLAB = "MATLAB imresize (Image Processing Toolbox), kernels of Keys 1981 and Duchon 1979"

# Published bicubic baselines (Y channel, shave = scale): the common comparison tables
# (EDSR Table 3, LapSRN and RCAN tables, ESRGAN Table 2).
_BICUBIC_REFERENCE = {
    "Set5": {2: (33.66, 0.9299), 3: (30.39, 0.8682), 4: (28.42, 0.8104)},
    "Set14": {2: (30.24, 0.8688), 3: (27.55, 0.7742), 4: (26.00, 0.7027)},
    "BSD100": {2: (29.56, 0.8431), 3: (27.21, 0.7385), 4: (25.96, 0.6675)},
    "Urban100": {2: (26.88, 0.8403), 3: (24.46, 0.7349), 4: (23.14, 0.6577)},
    "Manga109": {2: (30.80, 0.9339), 4: (24.89, 0.7866)},
}


def _spec(name: str, kernel: str, summary: str, reference: dict | None = None) -> ModelSpec:
    return ModelSpec(
        name=name,
        summary=summary,
        paper=_MATLAB,
        scales=_SCALES,
        build=partial(Interpolate, kernel=kernel),
        color="any",
        framework="interpolation",
        learned=False,
        reference=reference or {},
    )


NEAREST = _spec("nearest", "nearest", "nearest-neighbour interpolation")
BILINEAR = _spec("bilinear", "bilinear", "bilinear (triangle kernel) interpolation")
BICUBIC = _spec(
    "bicubic", "cubic", "bicubic interpolation (a = -0.5), the SR baseline", _BICUBIC_REFERENCE
)
LANCZOS = _spec("lanczos", "lanczos3", "Lanczos-3 interpolation")
