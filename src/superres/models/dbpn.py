"""D-DBPN: Haris, Shakhnarovich and Ukita, "Deep Back-Projection Networks for Super-Resolution",
CVPR 2018, the paper's main (dense) model. Iterative up-and-down framework on RGB: a 3x3
convolution to n0 = 256 maps and a 1x1 to nr = 64, then 7 up- and 6 down-projection units with
dense connections (`superres.nn.blocks.projection.DenseBackProjection`), and a 3x3
reconstruction from
the concatenated HR maps of all up-projections. PReLU (one slope) after every layer but the last.
The projection convolutions use (kernel, stride, padding) = (6, 2, 2) at x2, (8, 4, 2) at x4
and (12, 8, 2) at x8, as in the authors' dbpn.py (alterzero/DBPN-Pytorch, T = 7).

Initialisation as in that dbpn.py: `kaiming_normal` (He normal over the fan-in) for every
convolution and transposed convolution, zero biases, PReLU slopes 0.25. He over the fan-out,
used before, made the 448 -> 3 reconstruction 12 times larger and started the untrained
output at std 14 to 31 at x2; now it is about 0.9 at x2 (at most 1.6 over 30 seeds) and 0.2
at x4 on a natural image.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from superres.models.registry import ModelSpec
from superres.nn.blocks.projection import DenseBackProjection
from superres.nn.layers import conv, init_msra


def dbpn(
    scale: int, channels: int = 3, features: int = 256, projection: int = 64, stages: int = 7
) -> nn.Module:
    """D-DBPN with `stages` up-projections (T) of `projection` maps."""
    back_projection = DenseBackProjection(projection, scale, stages)
    return init_msra(nn.Sequential(OrderedDict(
        extract=nn.Sequential(conv(channels, features, 3), nn.PReLU()),
        reduce=nn.Sequential(conv(features, projection, 1), nn.PReLU()),
        body=back_projection,
        reconstruct=conv(back_projection.out_channels, channels, 3),
    )), mode="fan_in")


DBPN = ModelSpec(
    name="dbpn",
    summary="D-DBPN (T=7): dense iterative up- and down-projection units, n0=256, nr=64, RGB",
    paper="Haris, Shakhnarovich and Ukita, Deep Back-Projection Networks for Super-Resolution, "
    "CVPR 2018",
    scales=(2, 4, 8),
    build=dbpn,
    color="rgb",
    framework="iterative up-and-down",
    reference={  # DIV2K + Flickr2K (+ ImageNet); the x8 values are recalled (†) in the table
        "Set5": {2: (38.09, 0.9600), 4: (32.47, 0.8980), 8: (27.21, 0.7840)},
        "Set14": {2: (33.85, 0.9190), 4: (28.82, 0.7860), 8: (25.13, 0.6480)},
        "BSD100": {2: (32.27, 0.9000), 4: (27.72, 0.7400), 8: (24.88, 0.6010)},
        "Urban100": {2: (32.55, 0.9324), 4: (26.38, 0.7946), 8: (22.73, 0.6312)},
        "Manga109": {2: (38.89, 0.9775), 4: (30.91, 0.9137), 8: (25.14, 0.7987)},
    },
)
