"""Perceptual image-quality metrics: distances between deep features, which follow human
judgement of GAN-trained SR far better than PSNR does.

`VGGDistance` works with any VGG19 weights file, including the truncated one that holds only
conv1_1 to conv3_1. `LPIPS` (Zhang et al. 2018, VGG variant) needs torchvision's VGG16 and the
official LPIPS v0.1 linear head, both from files in ``$SUPERRES_WEIGHTS``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from superres.metrics.protocol import shave
from superres.nn.vgg import VGGFeatures, WeightsSource
from superres.weights import (
    StateDict,
    WeightsNotFoundError,
    read_state_dict,
    weights_origin,
    weights_root,
)

# LPIPS compares VGG16 after each block's last ReLU; the head weighs each channel of each.
LPIPS_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
LPIPS_CHANNELS = (64, 128, 256, 512, 512)
LPIPS_HEAD_FILE = "lpips_v0.1_vgg.pth"
LPIPS_HEAD_URL = (
    "https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/vgg.pth"
)


def unit_normalize(features: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Scale each position's feature vector to unit length (LPIPS's `normalize_tensor`), so
    that layers with large activations do not dominate."""
    return features / (features.pow(2).sum(dim=1, keepdim=True).sqrt() + eps)


def _squared_differences(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (unit_normalize(x) - unit_normalize(y)) ** 2


class VGGDistance(nn.Module):
    """Distance between images as LPIPS's uncalibrated baseline measures it: squared
    differences of unit-normalised VGG19 features, summed over channels, averaged over
    positions and summed over layers. 0 for identical images; one value per image pair.

    The default layers are the deepest that the truncated VGG19 weights hold.
    """

    def __init__(
        self,
        layers: Sequence[str] = ("relu2_2", "relu3_1"),
        weights: WeightsSource | None = None,
        *,
        pretrained: bool = True,
    ) -> None:
        super().__init__()
        self.features = VGGFeatures(layers, weights, pretrained=pretrained)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        fx, fy = self.features(x), self.features(y)
        return sum(
            (_squared_differences(fx[n], fy[n]).sum(dim=1).mean(dim=(1, 2)) for n in fx),
            start=x.new_zeros(x.shape[0]),
        )


def find_lpips_head() -> Path:
    """The official LPIPS v0.1 VGG head in the weights folder."""
    path = weights_root() / LPIPS_HEAD_FILE
    if not path.is_file():
        raise WeightsNotFoundError(
            f"no LPIPS head: {path} does not exist (weights folder from {weights_origin()}). "
            f"With internet, save the official LPIPS v0.1 VGG head {LPIPS_HEAD_URL} as "
            f"{LPIPS_HEAD_FILE} in that folder."
        )
    return path


def _head_tensors(head: WeightsSource) -> list[torch.Tensor]:
    """The five 1x1-convolution weights, from a file or state dict in the official layout
    (`lin{k}.model.1.weight`, shaped (1, C, 1, 1))."""
    state: StateDict = head if isinstance(head, Mapping) else read_state_dict(Path(head))
    tensors = []
    for k, channels in enumerate(LPIPS_CHANNELS):
        key = f"lin{k}.model.1.weight"
        if key not in state:
            raise ValueError(f"not an LPIPS v0.1 VGG head: no {key} (keys: {sorted(state)})")
        shape = tuple(state[key].shape)
        if shape != (1, channels, 1, 1):
            raise ValueError(f"{key} has shape {shape}, not (1, {channels}, 1, 1)")
        tensors.append(state[key])
    return tensors


class LPIPS(nn.Module):
    """Learned Perceptual Image Patch Similarity, VGG variant, version 0.1 (Zhang et al.,
    CVPR 2018): VGG16 features, unit-normalised, squared differences weighted per channel by
    a learned linear head, averaged over positions and summed over layers. Lower is more
    similar; one value per image pair. Inputs are RGB in [0, 1].

    `backbone` is torchvision's VGG16 ImageNet weights (default: found in the weights folder),
    `head` the official LPIPS v0.1 `vgg.pth` (default: `LPIPS_HEAD_FILE` there). With
    `pretrained=False` both are random (head weights non-negative, as trained ones are), for
    wiring tests only: such numbers mean nothing.
    """

    def __init__(
        self,
        backbone: WeightsSource | None = None,
        head: WeightsSource | None = None,
        *,
        pretrained: bool = True,
    ) -> None:
        super().__init__()
        # LPIPS's scaling layer on [-1, 1] input equals ImageNet mean/std on [0, 1] input.
        self.features = VGGFeatures(LPIPS_LAYERS, backbone, pretrained=pretrained, arch="vgg16")
        self.head = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in LPIPS_CHANNELS)
        if pretrained:
            tensors = _head_tensors(head if head is not None else find_lpips_head())
            with torch.no_grad():
                for layer, tensor in zip(self.head, tensors, strict=True):
                    layer.weight.copy_(tensor)
        elif head is not None:
            raise ValueError("a head was given with pretrained=False; pass one or the other")
        else:
            for layer in self.head:
                nn.init.uniform_(layer.weight, 0.0, 1.0)
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        fx, fy = self.features(x), self.features(y)
        return sum(
            (
                lin(_squared_differences(fx[n], fy[n])).mean(dim=(1, 2, 3))
                for lin, n in zip(self.head, LPIPS_LAYERS, strict=True)
            ),
            start=x.new_zeros(x.shape[0]),
        )


class VGGFeatureDistance:
    """`VGGDistance` (unit-normalised VGG19 features, LPIPS's uncalibrated
    baseline) on uint8 RGB images; lower is closer to HR. The default layers, relu2_2 and
    relu3_1, are the deepest in the truncated VGG19 weights; gray images are repeated to RGB."""

    name = "vgg_distance"

    def __init__(self, layers: Sequence[str] = ("relu2_2", "relu3_1"),
                 weights: str | os.PathLike[str] | None = None, *, pretrained: bool = True):
        self.distance = VGGDistance(layers, weights, pretrained=pretrained).eval()

    def __call__(self, sr: np.ndarray, hr: np.ndarray, scale: int) -> float:
        import torch

        def tensor(image: np.ndarray) -> torch.Tensor:
            rgb = np.atleast_3d(shave(image, scale)).astype(np.float32) / 255
            batch = torch.from_numpy(rgb).permute(2, 0, 1)[None]
            return batch.expand(1, 3, *batch.shape[2:])  # gray -> 3 equal channels

        with torch.no_grad():
            return float(self.distance(tensor(sr), tensor(hr))[0])
