"""Plain convolution stacks and the activations the classic models use."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from torch import nn


def leaky_relu() -> nn.LeakyReLU:
    """ESRGAN's activation everywhere: LeakyReLU with slope 0.2."""
    return nn.LeakyReLU(0.2, inplace=True)


ACTIVATIONS = {"relu": nn.ReLU, "prelu": nn.PReLU, "leaky": leaky_relu, "tanh": nn.Tanh}


def activation(name: str, channels: int) -> nn.Module:
    """ReLU, LeakyReLU (slope 0.2, as ESRGAN and LapSRN), tanh, or PReLU with one slope per
    channel (as FSRCNN uses)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose from {', '.join(ACTIVATIONS)}")
    return nn.PReLU(channels) if name == "prelu" else ACTIVATIONS[name]()


PaddingMode = Literal["zeros", "replicate"]


def conv(
    in_channels: int, out_channels: int, kernel: int, padding_mode: PaddingMode = "zeros"
) -> nn.Conv2d:
    """A 'same'-padded convolution: output size = input size for odd kernels. "replicate"
    repeats the edge pixels instead of zeros, as MATLAB's imfilter(..., 'replicate') in the
    SRCNN and FSRCNN authors' test code."""
    return nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2,
                     padding_mode=padding_mode)


def conv_stack(
    channels: Sequence[int], kernels: Sequence[int], act: str, last_activation: bool = False,
    padding_mode: PaddingMode = "zeros",
) -> nn.Sequential:
    """Convolutions channels[i] -> channels[i+1] with kernels[i], an activation between each."""
    if len(kernels) != len(channels) - 1:
        raise ValueError("need one kernel size per convolution")
    layers: list[nn.Module] = []
    for i, kernel in enumerate(kernels):
        layers.append(conv(channels[i], channels[i + 1], kernel, padding_mode))
        if i < len(kernels) - 1 or last_activation:
            layers.append(activation(act, channels[i + 1]))
    return nn.Sequential(*layers)


def init_msra(
    module: nn.Module, last_std: float | None = None, mode: Literal["fan_in", "fan_out"] = "fan_out"
) -> nn.Module:
    """He (MSRA) normal initialisation of every convolution, zero biases; optionally a small
    Gaussian for the last layer (FSRCNN initialises its deconvolution with std 0.001).

    `mode` is the fan in the variance 2 / fan. "fan_in" (input channels x kernel area: Caffe's
    "msra" filler, MatConvNet's sqrt(2 / (f f n))) keeps the activations' scale through the
    forward pass; "fan_out" keeps the gradients' and, wherever a layer narrows the channels (a
    dense layer reading 1,024 maps to write 16, a reconstruction to 1 or 3 channels),
    multiplies the activations' variance by fan_in / fan_out. For a transposed convolution
    PyTorch reads the fans from its (in, out, k, k) weight, so "fan_in" counts its outputs."""
    convs = [m for m in module.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
    for layer in convs:
        nn.init.kaiming_normal_(layer.weight, mode=mode, nonlinearity="relu")
        if layer.bias is not None:
            nn.init.zeros_(layer.bias)
    if last_std is not None and convs:
        nn.init.normal_(convs[-1].weight, std=last_std)
    return module


def receptive_field(module: nn.Module, channels: int = 1, size: int = 65) -> int:
    """Width in input pixels of the region that one central output pixel depends on,
    measured by back-propagating from that pixel (exact for any stack of layers)."""
    import torch

    # A random probe: with an all-zero input, ReLUs of a zero-bias network pass no gradient.
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(1, channels, size, size, generator=generator).requires_grad_()
    with torch.enable_grad():
        out = module(x)
        out[0, :, out.shape[2] // 2, out.shape[3] // 2].sum().backward()
    columns = torch.nonzero(x.grad[0].abs().sum(dim=(0, 1)))
    return int(columns.max() - columns.min() + 1)
