"""Losses for SR training: pixel (L1, MSE, Charbonnier), perceptual (VGG content, Gram
texture), total variation, and adversarial (vanilla, LSGAN, hinge, relativistic average)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from superres.nn.vgg import VGGFeatures, WeightsSource


class Charbonnier(nn.Module):
    """sqrt((sr - hr)^2 + eps^2), a differentiable L1 (LapSRN uses eps = 1e-3)."""

    def __init__(self, eps: float = 1e-3) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        return torch.sqrt((sr - hr) ** 2 + self.eps**2).mean()


PIXEL_LOSSES = {"l1": nn.L1Loss, "mse": nn.MSELoss, "charbonnier": Charbonnier}


def pixel_loss(name: str) -> nn.Module:
    """The pixel loss called `name` (l1, mse or charbonnier)."""
    if name not in PIXEL_LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose from {', '.join(PIXEL_LOSSES)}")
    return PIXEL_LOSSES[name]()


# ----------------------------------------------------------------------------- feature losses

FEATURE_DISTANCES = {"l1": F.l1_loss, "l2": F.mse_loss, "mse": F.mse_loss}


def _layer_weights(layers: Mapping[str, float] | Sequence[str]) -> dict[str, float]:
    weights = dict(layers) if isinstance(layers, Mapping) else dict.fromkeys(layers, 1.0)
    if not weights:
        raise ValueError("choose at least one VGG layer")
    return weights


class PerceptualLoss(nn.Module):
    """Content loss: the distance between VGG19 features of SR and HR images (Johnson et al.;
    SRGAN; ESRGAN), which rewards plausible texture where a pixel loss rewards blur.

    `layers` maps layer names to weights (a sequence weighs each 1). SRGAN's VGG2,2 loss is
    ``{"relu2_2": 1}`` with `criterion="l2"`; ESRGAN uses ``{"conv5_4": 1}`` (before the ReLU,
    where features are denser) with L1. Weights come from a file (see `VGGFeatures`), never
    random unless `pretrained=False`. HR is the target: no gradient flows to it.
    """

    def __init__(
        self,
        layers: Mapping[str, float] | Sequence[str] = ("relu2_2",),
        criterion: str = "l1",
        weights: WeightsSource | None = None,
        *,
        pretrained: bool = True,
    ) -> None:
        super().__init__()
        if criterion not in FEATURE_DISTANCES:
            choices = ", ".join(FEATURE_DISTANCES)
            raise ValueError(f"unknown criterion {criterion!r}; choose from {choices}")
        self.layer_weights = _layer_weights(layers)
        self.distance = FEATURE_DISTANCES[criterion]
        self.features = VGGFeatures(list(self.layer_weights), weights, pretrained=pretrained)

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target = self.features(hr)
        source = self.features(sr)
        return sum(
            (w * self.distance(source[n], target[n]) for n, w in self.layer_weights.items()),
            start=sr.new_zeros(()),
        )


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """Channel correlations F Fᵀ / (C·H·W) of (N, C, H, W) features: texture statistics with
    the spatial layout removed (Gatys et al.), normalised so that sizes are comparable."""
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


def _tiles(images: torch.Tensor, size: int) -> torch.Tensor:
    """Non-overlapping size x size tiles as a batch (a remainder at the border is dropped)."""
    c, h, w = images.shape[1:]
    if h < size or w < size:
        raise ValueError(f"images of {h}x{w} are smaller than the {size}x{size} texture patch")
    tiles = images[:, :, : h - h % size, : w - w % size].unfold(2, size, size)
    tiles = tiles.unfold(3, size, size)  # (N, C, rows, columns, size, size)
    return tiles.permute(0, 2, 3, 1, 4, 5).reshape(-1, c, size, size)


class TextureLoss(nn.Module):
    """Texture loss (EnhanceNet, Sajjadi et al. 2017): squared distance between Gram matrices
    of VGG19 features, so SR gets HR's textures without having to place every detail.

    EnhanceNet matches Gram matrices patch by patch (16 x 16 pixels) on the first layer of the
    first three blocks, which keeps textures local; `patch=None` uses the whole image.
    """

    def __init__(
        self,
        layers: Mapping[str, float] | Sequence[str] = ("relu1_1", "relu2_1", "relu3_1"),
        patch: int | None = 16,
        weights: WeightsSource | None = None,
        *,
        pretrained: bool = True,
    ) -> None:
        super().__init__()
        if patch is not None and patch < 1:
            raise ValueError(f"patch must be a positive size or None, not {patch}")
        self.layer_weights = _layer_weights(layers)
        self.patch = patch
        self.features = VGGFeatures(list(self.layer_weights), weights, pretrained=pretrained)

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        if self.patch is not None:
            sr, hr = _tiles(sr, self.patch), _tiles(hr, self.patch)
        with torch.no_grad():
            target = {n: gram_matrix(f) for n, f in self.features(hr).items()}
        source = self.features(sr)
        return sum(
            (
                w * F.mse_loss(gram_matrix(source[n]), target[n])
                for n, w in self.layer_weights.items()
            ),
            start=sr.new_zeros(()),
        )


class TVLoss(nn.Module):
    """Total variation: the mean |difference|^power between vertical neighbours plus that
    between horizontal ones; a smoothness prior against noise and checkerboard artefacts
    (power 1 is anisotropic TV, power 2 the squared form of Johnson et al.)."""

    def __init__(self, power: float = 1.0) -> None:
        super().__init__()
        if power <= 0:
            raise ValueError(f"power must be positive, not {power}")
        self.power = power

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[-1] < 2 or images.shape[-2] < 2:
            raise ValueError(f"total variation needs at least 2x2 pixels, got {images.shape}")
        vertical = images[..., 1:, :] - images[..., :-1, :]
        horizontal = images[..., :, 1:] - images[..., :, :-1]
        return (vertical.abs() ** self.power).mean() + (horizontal.abs() ** self.power).mean()


class FrequencySplit:
    """Fritsche, Gu and Timofte's frequency separation ("Frequency Separation for Real-World
    Super-Resolution", ICCVW 2019): a `size` x `size` box low-pass (edges repeated, so borders
    keep their level) and the rest as the high band. Colour and brightness live in the low
    band, noise, blur and compression artefacts mostly in the high one, so a pixel loss on the
    low band and a GAN on the high band learn a degradation without copying the colours of an
    unrelated image set."""

    def __init__(self, size: int) -> None:
        if size < 3 or size % 2 == 0:
            raise ValueError(f"the low-pass box is an odd size of 3 or more, not {size}")
        self.size = size

    def low(self, x: torch.Tensor) -> torch.Tensor:
        pad = self.size // 2
        return F.avg_pool2d(F.pad(x, (pad, pad, pad, pad), mode="replicate"), self.size, 1)

    def high(self, x: torch.Tensor) -> torch.Tensor:
        return x - self.low(x)


def cycle_loss(back: torch.Tensor, start: torch.Tensor, criterion: str = "mse") -> torch.Tensor:
    """Cycle consistency (CycleGAN; CinCGAN's inner and outer cycles): the distance between
    an image and its round trip F(G(x)), so that unpaired mappings keep the content. The
    start is data: no gradient reaches it."""
    return pixel_loss(criterion)(back, start.detach())


def identity_loss(generator: Callable[[torch.Tensor], torch.Tensor], image: torch.Tensor,
                  target: torch.Tensor | None = None, criterion: str = "l1") -> torch.Tensor:
    """Identity (CycleGAN; CinCGAN): a generator fed an image of its output domain must give
    back that image (`target` None), or its known counterpart (CinCGAN's SR network on the
    bicubic LR of an HR image), so that it changes only what its domain needs."""
    goal = image if target is None else target
    return pixel_loss(criterion)(generator(image), goal.detach())


# ----------------------------------------------------------------------------- adversarial


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


class AdversarialLoss(nn.Module, ABC):
    """A GAN objective on the discriminator's raw outputs (logits, any shape).

    `discriminator_loss(real, fake)` trains D on its outputs for HR images and for SR images
    (detached from G); `generator_loss(fake, real)` trains G through D's outputs on SR images.
    Only a `relativistic` loss needs D's outputs on real images for G's step.
    """

    relativistic: ClassVar[bool] = False

    @abstractmethod
    def discriminator_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """D's loss, to minimise over D."""

    @abstractmethod
    def generator_loss(self, fake: torch.Tensor, real: torch.Tensor | None = None) -> torch.Tensor:
        """G's loss, to minimise over G."""


class VanillaGANLoss(AdversarialLoss):
    """Goodfellow et al.'s GAN, as SRGAN uses it: D is a real/fake classifier trained with
    binary cross-entropy; G minimises -log D(G(z)), the non-saturating form."""

    def discriminator_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return _bce(real, 1.0) + _bce(fake, 0.0)

    def generator_loss(self, fake: torch.Tensor, real: torch.Tensor | None = None) -> torch.Tensor:
        return _bce(fake, 1.0)


class LSGANLoss(AdversarialLoss):
    """Least-squares GAN (Mao et al. 2017, targets 0 for fake and 1 for real, with the paper's
    factor 1/2): squared errors do not saturate, so G gets gradients even when D is sure."""

    def discriminator_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((real - 1) ** 2).mean() + 0.5 * (fake**2).mean()

    def generator_loss(self, fake: torch.Tensor, real: torch.Tensor | None = None) -> torch.Tensor:
        return 0.5 * ((fake - 1) ** 2).mean()


class HingeGANLoss(AdversarialLoss):
    """Hinge GAN (Lim & Ye 2017; SAGAN): D is penalised only inside the margins real > 1,
    fake < -1; G raises D's output on its images."""

    def discriminator_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()

    def generator_loss(self, fake: torch.Tensor, real: torch.Tensor | None = None) -> torch.Tensor:
        return -fake.mean()


class RaGANLoss(AdversarialLoss):
    """Relativistic average GAN in ESRGAN's form (Jolicoeur-Martineau 2018; Wang et al. 2018):
    D estimates whether a real image is more realistic than the average fake, and vice versa.

    L_D = -E_r[log σ(C(r) - E_f C(f))] - E_f[log(1 - σ(C(f) - E_r C(r)))], and L_G swaps the
    targets, so G learns from the real images' outputs too. BasicSR halves both terms of L_D;
    this is the paper's sum. In G's step D's outputs on real images are constants.
    """

    relativistic = True

    def discriminator_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return _bce(real - fake.mean(), 1.0) + _bce(fake - real.mean(), 0.0)

    def generator_loss(self, fake: torch.Tensor, real: torch.Tensor | None = None) -> torch.Tensor:
        if real is None:
            raise ValueError("the relativistic generator loss needs D's outputs on real images")
        real = real.detach()
        return _bce(real - fake.mean(), 0.0) + _bce(fake - real.mean(), 1.0)


ADVERSARIAL_LOSSES: dict[str, type[AdversarialLoss]] = {
    "vanilla": VanillaGANLoss,
    "lsgan": LSGANLoss,
    "hinge": HingeGANLoss,
    "ragan": RaGANLoss,
}


def adversarial_loss(name: str) -> AdversarialLoss:
    """The adversarial loss called `name` (vanilla, lsgan, hinge or ragan)."""
    if name not in ADVERSARIAL_LOSSES:
        raise ValueError(
            f"unknown adversarial loss {name!r}; choose from {', '.join(ADVERSARIAL_LOSSES)}"
        )
    return ADVERSARIAL_LOSSES[name]()
