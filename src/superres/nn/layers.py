"""Plain convolution stacks and the activations the classic models use."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "prelu": nn.PReLU, "tanh": nn.Tanh}


def activation(name: str, channels: int) -> nn.Module:
    """ReLU, tanh, or PReLU with one slope per channel (as FSRCNN uses)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose from {', '.join(ACTIVATIONS)}")
    return nn.PReLU(channels) if name == "prelu" else ACTIVATIONS[name]()


def conv(in_channels: int, out_channels: int, kernel: int) -> nn.Conv2d:
    """A 'same'-padded convolution: output size = input size for odd kernels."""
    return nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2)


def conv_stack(
    channels: Sequence[int], kernels: Sequence[int], act: str, last_activation: bool = False
) -> nn.Sequential:
    """Convolutions channels[i] -> channels[i+1] with kernels[i], an activation between each."""
    if len(kernels) != len(channels) - 1:
        raise ValueError("need one kernel size per convolution")
    layers: list[nn.Module] = []
    for i, kernel in enumerate(kernels):
        layers.append(conv(channels[i], channels[i + 1], kernel))
        if i < len(kernels) - 1 or last_activation:
            layers.append(activation(act, channels[i + 1]))
    return nn.Sequential(*layers)
