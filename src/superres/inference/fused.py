"""Plain convolution stacks (ESPCN, FSRCNN) rewritten for fast CPU inference, computing the
same function as the model they come from (tested to 1e-5).

On a CPU the small SR networks spend much of their time outside the convolutions, so:
- each convolution and the activation after it run as one oneDNN call (a fused post-op)
  where this PyTorch build has it, and no separate pass over the feature map;
- tanh is evaluated as 2 sigmoid(2a) - 1 with the factors folded into the neighbouring
  convolutions' weights, because oneDNN's fused sigmoid costs next to nothing while tanh
  costs a pass of its own (a third of ESPCN's time on one thread, see docs/benchmarks.md);
- the zero padding of every convolution becomes one padding of the input followed by
  'valid' convolutions, resetting the band outside the image to the value that stands for
  zero after each activation (0.5 for the folded sigmoid), so the borders stay exact;
- a network that ends in a pixel shuffle can hand back its LR-size phase planes, so that
  colour conversion runs before the shuffle (see `superres.inference.streaming`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

# Activations a convolution carries as a oneDNN post-op; tanh and PReLU are handled apart.
_POST_OPS: dict[type[nn.Module], str] = {
    nn.ReLU: "relu", nn.Sigmoid: "sigmoid", nn.LeakyReLU: "leaky_relu"
}


def _fused_conv_available() -> bool:
    """Whether this PyTorch build has oneDNN's convolution with a fused activation."""
    return torch.backends.mkldnn.is_available() and hasattr(
        torch.ops.mkldnn, "_convolution_pointwise"
    )


@dataclass
class _Step:
    """One 'valid' convolution, its activation, and the value of 'zero' after it."""

    conv: int  # index of the weight/bias buffers
    attr: str  # oneDNN post-op: none, relu, sigmoid, leaky_relu
    scalars: list[float]
    prelu: int | None  # index of a PReLU weight buffer, applied after the convolution
    band: int  # LR pixels outside the image still present in the output, on every side
    fill: float  # the value that stands for 0 in the next convolution's input


class FusedChain(nn.Module):
    """The convolutions and activations at the start of a sequential model, fused; the
    modules after them (`tail`, e.g. the pixel shuffle or a transposed convolution) run as
    they are."""

    def __init__(self, convs: list[nn.Conv2d], activations: list[nn.Module | None],
                 tail: list[nn.Module]) -> None:
        super().__init__()
        self.radius = sum(c.kernel_size[0] // 2 for c in convs)
        self.widest = max(c.out_channels for c in convs)
        self.strip_elements = 1 << 22  # floats in the widest feature map of one band
        self.tail = nn.Sequential(*tail)
        self.steps: list[_Step] = []
        self.fused = _fused_conv_available()
        weights = [c.weight.detach().clone() for c in convs]
        biases = [c.bias.detach().clone() if c.bias is not None
                  else torch.zeros(c.out_channels) for c in convs]
        band = self.radius
        self.unfold_tanh = False
        for i, (conv, act) in enumerate(zip(convs, activations, strict=True)):
            band -= conv.kernel_size[0] // 2
            attr, scalars, fill, prelu = "none", [], 0.0, None
            if isinstance(act, nn.Tanh):
                # tanh(a) = 2 sigmoid(2a) - 1: double this layer, undo the affine in the next
                weights[i], biases[i] = weights[i] * 2, biases[i] * 2
                attr, fill = "sigmoid", 0.5
                if i + 1 < len(convs):
                    biases[i + 1] = biases[i + 1] - weights[i + 1].sum(dim=(1, 2, 3))
                    weights[i + 1] = weights[i + 1] * 2
                else:
                    self.unfold_tanh = True
            elif type(act) in _POST_OPS:
                attr = _POST_OPS[type(act)]
                scalars = [act.negative_slope] if isinstance(act, nn.LeakyReLU) else []
            elif isinstance(act, nn.PReLU):
                prelu = i
                self.register_buffer(f"slope{i}", act.weight.detach().clone())
            self.steps.append(_Step(i, attr, scalars, prelu, band, fill))
        for i, (weight, bias) in enumerate(zip(weights, biases, strict=True)):
            self.register_buffer(f"weight{i}", _nhwc(weight))
            self.register_buffer(f"bias{i}", bias.contiguous())
        last = tail[0] if len(tail) == 1 else None
        self.shuffle = last.upscale_factor if isinstance(last, nn.PixelShuffle) else None

    @classmethod
    def compile(cls, model: nn.Module) -> FusedChain | None:
        """The fused form of `model`, or None when it does not start with a plain stack of
        'same' convolutions (stride 1, zero padding) and elementwise activations."""
        leaves = list(_sequential_leaves(model))
        convs: list[nn.Conv2d] = []
        activations: list[nn.Module | None] = []
        i = 0
        while i < len(leaves) and _plain_conv(leaves[i]):
            convs.append(leaves[i])
            following = leaves[i + 1] if i + 1 < len(leaves) else None
            is_act = isinstance(following, (*_POST_OPS, nn.Tanh, nn.PReLU))
            activations.append(following if is_act else None)
            i += 2 if is_act else 1
        if not convs:
            return None
        return cls(convs, activations, leaves[i:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self.body(x))

    def phases(self, x: torch.Tensor) -> torch.Tensor:
        """N x C*s^2 x H x W: the output before the final pixel shuffle (channels last)."""
        if self.shuffle is None:
            raise ValueError("this network does not end in a pixel shuffle")
        return self.body(x)

    def body(self, x: torch.Tensor) -> torch.Tensor:
        """The fused convolutions, on the input zero-padded once by their total radius, a
        band of rows at a time: maps that stay in cache run faster than maps of a whole tile
        (ESPCN on 512x512, one thread: 215 against 249 ms at x2, 230 against 329 ms at x4,
        benchmarks/cpu_ablation.py); each band recomputes 2 * radius rows of context."""
        n, _, height, width = x.shape
        radius = self.radius
        padded = _nhwc(F.pad(x, (radius,) * 4))
        rows = max(32, self.strip_elements // (width * self.widest))  # overlap stays small
        rows = -(-height // max(1, round(height / rows)))  # bands of even height
        out: torch.Tensor | None = None
        for top in range(0, height, rows):
            count = min(rows, height - top)
            y = padded[:, :, top : top + count + 2 * radius, :]
            for step in self.steps:
                y = self._conv(y, step)
                if step.prelu is not None:
                    y = F.prelu(y, getattr(self, f"slope{step.prelu}"))
                if step.band:  # reset what lies outside the image
                    above, below = max(0, step.band - top), max(0, top + count + step.band - height)
                    _fill_outside(y, above, below, step.band, step.fill)
            if self.unfold_tanh:
                y = y.mul_(2).sub_(1)
            if count == height:
                return y
            if out is None:
                out = torch.empty((n, y.shape[1], height, width), dtype=y.dtype,
                                  device=y.device, memory_format=torch.channels_last)
            out[:, :, top : top + count] = y
        assert out is not None
        return out

    def _conv(self, x: torch.Tensor, step: _Step) -> torch.Tensor:
        weight, bias = getattr(self, f"weight{step.conv}"), getattr(self, f"bias{step.conv}")
        if self.fused and x.device.type == "cpu" and x.dtype == torch.float32:
            return torch.ops.mkldnn._convolution_pointwise(
                x, weight, bias, [0, 0], [1, 1], [1, 1], 1, step.attr, step.scalars, ""
            )
        y = F.conv2d(x, weight.to(x.dtype), bias.to(x.dtype))
        if step.attr == "relu":
            return y.relu_()
        if step.attr == "sigmoid":
            return y.sigmoid_()
        if step.attr == "leaky_relu":
            return F.leaky_relu(y, step.scalars[0], inplace=True)
        return y


def _nhwc(weight: torch.Tensor) -> torch.Tensor:
    """The weight with NHWC strides, even with one input channel (where both layouts are
    the same memory): oneDNN then takes its NHWC kernels, about 1.7x faster here."""
    weight = weight.contiguous(memory_format=torch.channels_last)
    _, in_channels, height, width = weight.shape
    return weight.as_strided(weight.shape, (in_channels * height * width, 1, width * in_channels,
                                            in_channels))


def _fill_outside(y: torch.Tensor, above: int, below: int, sides: int, value: float) -> None:
    """Set rows above and below the image and `sides` columns either side to `value`."""
    if above:
        y[..., :above, :] = value
    if below:
        y[..., -below:, :] = value
    y[..., :, :sides] = value
    y[..., :, -sides:] = value


def _plain_conv(module: nn.Module) -> bool:
    """A stride-1, undilated, ungrouped convolution with 'same' zero padding."""
    if not isinstance(module, nn.Conv2d) or module.padding_mode != "zeros":
        return False
    kernel = module.kernel_size
    return (kernel[0] == kernel[1] and kernel[0] % 2 == 1 and module.stride == (1, 1)
            and module.dilation == (1, 1) and module.groups == 1
            and module.padding == (kernel[0] // 2, kernel[1] // 2))


def _sequential_leaves(model: nn.Module) -> Iterator[nn.Module]:
    """The modules a chain of nn.Sequential containers runs, in order."""
    if isinstance(model, nn.Sequential) and type(model).forward is nn.Sequential.forward:
        for child in model:
            yield from _sequential_leaves(child)
    else:
        yield model
