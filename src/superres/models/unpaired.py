"""The networks of unpaired SR (docs/unsupervised.md), and the `cincgan` model.

Bulat, Yang and Tzimiropoulos, "To learn image super-resolution, use a GAN to learn how to do
image degradation first", ECCV 2018: a High-to-Low generator makes LR images from HR ones and
a noise vector, judged against real, unpaired LR by a discriminator; its pairs then train an
ordinary SR network (here the registered `srvgg-s`). Yuan et al., "Unsupervised Image
Super-Resolution using Cycle-in-Cycle Generative Adversarial Networks", CVPRW 2018: G1 cleans
real LR, G2 maps it back, patch discriminators judge the clean LR and the SR output, and what
upscales a real image at the end is G1 followed by the SR network, registered as `cincgan`.

The generators and discriminators here are not SR models (they judge, or go from HR to LR),
so only `cincgan` is in the registry. The registered `cincgan` is sized for a CPU: G1 of 32
features and 4 residual blocks (the paper: 64 and 6), an EDSR-style SR network of 4 blocks of
32 features (the paper: a pre-trained EDSR); docs/models/cincgan.md.
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from superres.models.edsr import edsr
from superres.models.registry import ModelSpec
from superres.nn.blocks.residual import ResidualBlock
from superres.nn.layers import conv, leaky_relu


class HighToLow(nn.Module):
    """Bulat et al.'s High-to-Low generator: an HR patch and a noise vector to an LR patch.

    The noise vector is projected by a dense layer to one patch-sized map, concatenated to the
    image as one more channel, so that one HR patch yields many LR ones (the paper's
    conditioning: real degradations are random). An encoder of residual blocks follows, with
    a 2x2 average pooling after each group of `blocks` until 1/scale, then one more group and
    a conv back to RGB. Added (a deviation): the input average-pooled by the scale is added
    to the output, so training starts near a box-filtered LR rather than from noise.
    """

    def __init__(self, scale: int = 4, patch: int = 64, noise: int = 64, width: int = 64,
                 blocks: int = 2, channels: int = 3) -> None:
        super().__init__()
        if scale < 2 or scale & (scale - 1):
            raise ValueError(f"the High-to-Low generator pools by 2: scale must be 2, 4 or 8, "
                             f"not {scale}")
        if patch % scale:
            raise ValueError(f"HR patch {patch} is not a multiple of the scale {scale}")
        self.scale, self.patch, self.noise = scale, patch, noise
        self.project = nn.Linear(noise, patch * patch)
        layers: list[nn.Module] = [conv(channels + 1, width, 3)]
        for _ in range(scale.bit_length() - 1):  # one pooled group per factor of 2
            layers += [*(ResidualBlock(width) for _ in range(blocks)), nn.AvgPool2d(2)]
        layers += [*(ResidualBlock(width) for _ in range(blocks)), conv(width, channels, 3)]
        self.body = nn.Sequential(*layers)

    def sample_noise(self, batch: int) -> torch.Tensor:
        """A batch of noise vectors, N(0, 1), from torch's generator (a checkpoint keeps its
        state, so a resumed run draws the same ones)."""
        return torch.randn(batch, self.noise, device=self.project.weight.device)

    def forward(self, hr: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """N x C x patch x patch HR and N x noise vectors -> N x C x patch/s x patch/s LR."""
        n = hr.shape[0]
        if hr.shape[-2:] != (self.patch, self.patch):
            raise ValueError(f"the High-to-Low generator takes {self.patch}x{self.patch} HR "
                             f"patches (its noise map is that size), not "
                             f"{hr.shape[-2]}x{hr.shape[-1]}")
        if noise.shape != (n, self.noise):
            raise ValueError(f"noise must be {n} x {self.noise}, not {tuple(noise.shape)}")
        noise_map = self.project(noise).view(n, 1, self.patch, self.patch)
        lr = self.body(torch.cat([hr, noise_map], dim=1))
        return lr + F.avg_pool2d(hr, self.scale)


class ResidualDiscriminator(nn.Module):
    """Bulat et al.'s discriminators: a conv, residual blocks (a 2x2 average pooling after
    each of the first `pools`, so the HR one sees its patch at LR size), a dense layer to one
    logit. Spectral normalisation on every weight, as the paper's SN-GAN-style training."""

    def __init__(self, patch: int, width: int = 64, blocks: int = 6, pools: int = 0,
                 channels: int = 3) -> None:
        super().__init__()
        if pools > blocks or patch % (1 << pools):
            raise ValueError(f"{pools} poolings need as many blocks ({blocks}) and a patch "
                             f"divisible by {1 << pools}, not {patch}")
        self.patch = patch
        layers: list[nn.Module] = [conv(channels, width, 3)]
        for i in range(blocks):
            layers.append(ResidualBlock(width))
            if i < pools:
                layers.append(nn.AvgPool2d(2))
        side = patch >> pools
        layers += [nn.ReLU(), nn.Flatten(), nn.Linear(width * side * side, 1)]
        self.body = nn.Sequential(*layers)
        for module in self.body.modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                spectral_norm(module)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """N x C x patch x patch -> N x 1 logits."""
        if x.shape[-2:] != (self.patch, self.patch):
            raise ValueError(f"this discriminator judges {self.patch}x{self.patch} patches, "
                             f"not {x.shape[-2]}x{x.shape[-1]}: its dense layer fixes the size")
        return self.body(x)


class CycleGenerator(nn.Module):
    """CinCGAN's LR-to-LR generators (G1: real LR to clean LR, G2: back): three convs (the
    first 7x7), residual blocks, three convs (the last 7x7), LeakyReLU 0.2. Added (a
    deviation): a global skip with a zero-initialised last conv, so each starts as the
    identity that its identity loss asks of it on the other domain."""

    def __init__(self, width: int = 64, blocks: int = 6, channels: int = 3) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv(channels, width, 7), leaky_relu(), conv(width, width, 3), leaky_relu(),
            conv(width, width, 3), leaky_relu(),
            *(ResidualBlock(width) for _ in range(blocks)),
            conv(width, width, 3), leaky_relu(), conv(width, width, 3), leaky_relu(),
            conv(width, channels, 7),
        )
        nn.init.zeros_(self.body[-1].weight)
        nn.init.zeros_(self.body[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class PatchDiscriminator(nn.Module):
    """CinCGAN's discriminators D1 (clean LR) and D2 (HR): `strided` 4x4 stride-2 convs
    doubling the features from `width` (batch norm after all but the first), a 3x3 conv with
    batch norm, then a 3x3 conv to one logit per position. Fully convolutional: it judges
    patches of any size divisible by 2^strided, one logit per receptive field."""

    def __init__(self, width: int = 64, strided: int = 3, channels: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        previous = channels
        for i in range(strided):
            out = width << i
            layers.append(nn.Conv2d(previous, out, 4, stride=2, padding=1, bias=i == 0))
            if i:
                layers.append(nn.BatchNorm2d(out))
            layers.append(leaky_relu())
            previous = out
        layers += [nn.Conv2d(previous, previous, 3, padding=1, bias=False),
                   nn.BatchNorm2d(previous), leaky_relu(), conv(previous, 1, 3)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class CinCGANNet(nn.Module):
    """What a trained CinCGAN upscales with: G1 cleans the real LR input, then the SR network
    enlarges the clean LR."""

    def __init__(self, clean: nn.Module, sr: nn.Module) -> None:
        super().__init__()
        self.clean, self.sr = clean, sr

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        return self.sr(self.clean(lr))


def cincgan(scale: int, width: int = 64, blocks: int = 6, sr_blocks: int = 16,
            sr_channels: int = 64) -> CinCGANNet:
    """G1 of `width` features and `blocks` residual blocks, then EDSR (no residual scaling)
    of `sr_blocks` blocks of `sr_channels` features."""
    return CinCGANNet(CycleGenerator(width, blocks),
                      edsr(scale, blocks=sr_blocks, channels=sr_channels, res_scale=1.0))


CINCGAN = ModelSpec(
    name="cincgan",
    summary="CinCGAN at CPU size: G1 (32 features, 4 residual blocks) cleans real LR, an "
    "EDSR-style network (4 blocks, 32 features) upscales it; trained unpaired, RGB",
    paper="Yuan, Liu, Zhang, Zhang, Dong and Lin, Unsupervised Image Super-Resolution using "
    "Cycle-in-Cycle Generative Adversarial Networks, CVPRW 2018",
    scales=(4,),
    build=partial(cincgan, width=32, blocks=4, sr_blocks=4, sr_channels=32),
    color="rgb",
    framework="post-upsampling",
    supervision="unpaired",
)
