"""DJF: Li, Huang, Ahuja and Yang, "Deep Joint Image Filtering", ECCV 2016 (residual form of
the TPAMI 2019 version, "Joint Image Filtering with Deep Convolutional Networks"), for
colour-guided depth-map SR. The LR depth is upsampled with bicubic interpolation; CNN_T reads
it, CNN_G reads the RGB guide at HR size, each a 9-1-5 stack of ReLU convolutions ending in
one map; CNN_F fuses the two maps (9-1-5) into a residual added to the upsampled depth.

Sized for a CPU: the paper's widths are 96/48 in CNN_T and CNN_G and 64/32 in CNN_F (layer
sizes recalled from the paper, not re-checked); here they are halved (48/24 and 32/16), which
leaves 25,347 parameters instead of 56,323 and less than half the arithmetic per pixel.
One network serves x4, x8 and x16: it sees the depth interpolated to the guide's size, so the
scale only sets the interpolation; it is trained on batches of all three scales.

Trained by leave-one-scene-out on the six Middlebury 2005 scenes (recipe `depth_djf`; the
paper trains on NYU v2), 400 steps per fold did not take it beyond its bicubic input (held-out
Art x4/x8/x16 RMSE 4.278/6.287/9.750, bicubic 4.28/6.29/9.76; docs/depth.md), so no weights
are shipped: `learned-jbu` is the shipped guided model. Without a guide the upsampled depth
guides itself.
"""

from __future__ import annotations

from torch import nn

from superres.models.registry import ModelSpec
from superres.nn.blocks.guided import JointFilter
from superres.nn.frameworks import GuidedPreUpsampling

PAPER = ("Li, Huang, Ahuja and Yang, Deep Joint Image Filtering, ECCV 2016; Joint Image "
         "Filtering with Deep Convolutional Networks, TPAMI 2019")


def djf(scale: int, branch: tuple[int, int] = (48, 24),
        fusion: tuple[int, int] = (32, 16)) -> nn.Module:
    """DJF at half the paper's widths (pass `branch=(96, 48), fusion=(64, 32)` for the paper's)."""
    return GuidedPreUpsampling(JointFilter(3, branch, fusion), scale, guide_channels=3)


DJF = ModelSpec(
    name="djf",
    summary="DJF colour-guided depth SR (half widths), bicubic pre-upsampling, one network "
            "for x4/x8/x16",
    paper=PAPER,
    scales=(4, 8, 16),
    build=djf,
    color="y",
    framework="pre-upsampling",
    guided=True,
)
