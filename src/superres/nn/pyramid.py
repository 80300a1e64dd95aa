"""The progressive framework: a Laplacian pyramid of x2 levels each adding a band (LapSRN).

Every level upsamples the features and the image by 2 and adds the band (residual) predicted
from the features to the upsampled image, so x8 is three x2 steps and every step is supervised
with the HR image downscaled to its size. Levels may share one set of weights (MS-LapSRN).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from superres.resize import imresize


def pyramid_levels(scale: int) -> int:
    """log2(scale): the number of x2 levels; the pyramid only reaches powers of two."""
    if scale < 2 or scale & (scale - 1):
        raise ValueError(f"a Laplacian pyramid upsamples by powers of two, not {scale}")
    return scale.bit_length() - 1


def bilinear_kernel(size: int) -> torch.Tensor:
    """The size x size kernel of bilinear upsampling by (size + 1) // 2 as a transposed conv."""
    factor = (size + 1) // 2
    center = factor - 1 if size % 2 else factor - 0.5
    taps = 1 - (torch.arange(size, dtype=torch.float32) - center).abs() / factor
    return taps[:, None] * taps[None, :]


class BilinearUpsampler(nn.ConvTranspose2d):
    """A learnable x2 image upsampler: a 4x4 transposed convolution without bias, starting as
    bilinear interpolation (LapSRN's image branch), so the pyramid starts from a sane image."""

    def __init__(self, channels: int = 1) -> None:
        super().__init__(channels, channels, 4, stride=2, padding=1, bias=False)
        with torch.no_grad():
            self.weight.zero_()
            for channel in range(channels):
                self.weight[channel, channel] = bilinear_kernel(4)


class PyramidLevel(nn.Module):
    """One x2 level: `features` upsamples the features, `residual` turns them into the band,
    `image` upsamples the coarser image; the level's SR image is the upsampled image + band."""

    def __init__(self, features: nn.Module, residual: nn.Module, image: nn.Module) -> None:
        super().__init__()
        self.features = features
        self.residual = residual
        self.image = image

    def forward(
        self, features: torch.Tensor, image: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.features(features)
        return features, self.image(image) + self.residual(features)


class LaplacianPyramid(nn.Module):
    """Progressive upsampling to `scale`: embed the LR image, then log2(scale) pyramid levels.

    `levels` holds one level per x2 step, or a single level reused at every step (parameter
    sharing across levels: the same weights then serve every scale).
    """

    def __init__(self, embed: nn.Module, levels: Sequence[PyramidLevel], scale: int) -> None:
        super().__init__()
        self.num_levels = pyramid_levels(scale)
        if len(levels) not in (1, self.num_levels):
            raise ValueError(f"x{scale} needs {self.num_levels} levels (or 1 shared), not "
                             f"{len(levels)}")
        self.embed = embed
        self.levels = nn.ModuleList(levels)

    def pyramid(self, lr: torch.Tensor) -> list[torch.Tensor]:
        """The SR image of every level, x2 first."""
        features, image = self.embed(lr), lr
        outputs = []
        for index in range(self.num_levels):
            features, image = self.levels[index % len(self.levels)](features, image)
            outputs.append(image)
        return outputs

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        return self.pyramid(lr)[-1]

    def training_loss(
        self,
        lr: torch.Tensor,
        hr: torch.Tensor,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        step: int,
    ) -> torch.Tensor:
        """Sum over levels of `loss_fn` (LapSRN: Charbonnier) against the HR image downscaled
        (MATLAB bicubic) to each level's size: every level learns its own band."""
        outputs = self.pyramid(lr)
        with torch.no_grad():
            targets = [imresize(hr, size=tuple(out.shape[-2:])) for out in outputs[:-1]]
        return sum(
            (loss_fn(out, target) for out, target in zip(outputs, [*targets, hr], strict=True)),
            torch.zeros((), device=lr.device),
        )
