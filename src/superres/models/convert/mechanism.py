"""What converting any released checkpoint takes, whatever its family: the records of
releases, layouts and families, and one pipeline (open the checkpoint, find its layout,
rename its keys to ours, read the architecture from the shapes, refuse a checkpoint that is
not the requested model naming what differs, or tell which registered model a checkpoint
is). The families (`edsr`, `gan`, `matlab`) only describe their files, layouts and how to read
their architectures.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from superres.models.registry import ModelSpec
from superres.nn.frameworks import MeanShift
from superres.weights import read_checkpoint

Tensors = dict[str, Tensor]
Rule = tuple[str, str | Callable[[re.Match[str]], str]]


@dataclass(frozen=True)
class ReleasedWeights:
    """A published checkpoint: where it is, its key layout, and how to recognise the file.

    `sha256_prefix` is the hex after the last '-' in the file name: torch.hub's naming
    convention, the first 8 hex digits of the file's sha256 (torch.hub checks downloads
    against it). `sha256` is the full digest where one is published.
    """

    model: str
    scale: int
    file: str
    url: str
    layout: str
    sha256_prefix: str | None = None
    sha256: str | None = None
    note: str = ""


@dataclass(frozen=True)
class Architecture:
    """What a state dict in superres's key layout holds, read from its tensor shapes."""

    family: str  # "edsr", "rcan", "rdn", "srresnet", "rrdb", "srvgg", "srcnn", "fsrcnn", ...
    scale: int  # 0 where the tensors do not fix it (SRCNN, FSRCNN, VDSR, MS-LapSRN)
    sizes: tuple[tuple[str, Any], ...]

    def __str__(self) -> str:
        sizes = ", ".join(f"{name}={value}" for name, value in self.sizes)
        scale = f" x{self.scale}" if self.scale else ""
        return f"{self.family.upper()}{scale} ({sizes})"


# Reads an architecture from a state dict in our names; `name` gives the checkpoint's own.
Reader = Callable[[Mapping[str, Tensor], Callable[[str], str]], Architecture]
# The builder's keyword arguments that a loaded checkpoint of an architecture needs at a scale.
Options = Callable[[Mapping[str, Any], Architecture, int], dict[str, Any]]


@dataclass(frozen=True)
class Layout:
    """A released key layout: a key only it has, its renaming rules, and the pixel range
    [0, rgb_range] its networks were trained on."""

    name: str
    marker: str
    rules: Callable[[list[str]], list[Rule]]
    rgb_range: float = 255.0


def indices(keys: Iterable[str], pattern: str) -> list[int]:
    """The distinct integers that `pattern`'s first group captures in `keys`, sorted."""
    return sorted({int(m[1]) for key in keys if (m := re.fullmatch(pattern, key))})


def shape(tensor: Tensor) -> tuple[int, ...]:
    return tuple(tensor.shape)


def sub_pixel_factor(state: Mapping[str, Tensor], key: str, channels: int, name: str) -> int:
    """The upscaling factor f of a sub-pixel conv to channels x f^2 outputs."""
    outputs = state[key].shape[0]
    factor = math.isqrt(outputs // channels)
    if factor < 2 or factor * factor * channels != outputs:
        raise ValueError(f"{name} {shape(state[key])} is no sub-pixel convolution to "
                         f"{channels} channels times a square")
    return factor


def state_tensors(state: Mapping[str, Any]) -> Tensors:
    """The tensors of a loaded checkpoint; BasicSR's wrapper is opened (EMA weights first)."""
    for wrapper in ("params_ema", "params"):
        if isinstance(state.get(wrapper), Mapping):
            state = state[wrapper]
            break
    others = sorted(k for k, v in state.items() if not isinstance(v, Tensor))
    if others:
        raise ValueError(f"not a state dict of tensors: {', '.join(others[:5])} are not tensors")
    return dict(state)


def rename(tensors: Tensors, layout: Layout) -> tuple[Tensors, dict[str, str], list[str]]:
    """(our tensors, our key -> the checkpoint's key, the checkpoint's keys no rule maps)."""
    rules = layout.rules(list(tensors))
    ours: Tensors = {}
    origin: dict[str, str] = {}
    unmapped = []
    for key, tensor in tensors.items():
        for pattern, replacement in rules:
            if m := re.fullmatch(pattern, key):
                new = replacement(m) if callable(replacement) else m.expand(replacement)
                ours[new], origin[new] = tensor, key
                break
        else:
            unmapped.append(key)
    return ours, origin, unmapped


def _mean_shift(module: MeanShift, rgb_range: float) -> Tensors:
    """The official mean shift of a network trained on [0, rgb_range] images, written for
    `module`, which scales by its own rgb_range: identical when the two ranges agree."""
    ratio = rgb_range / module.rgb_range
    official = MeanShift(module.sign, rgb_range, module.mean)
    if module.sign < 0:
        return {"weight": official.weight * ratio, "bias": official.bias}
    return {"weight": official.weight / ratio, "bias": official.bias / ratio}


def _complete(ours: Tensors, target: nn.Module, layout: Layout) -> None:
    """What a layout writes another way, in ours: the mean shifts it leaves out (fixed for
    its pixel range), and a PReLU with one shared slope (`nn.PReLU()`'s default, which
    SRGAN-PyTorch uses) as the same slope in every channel of our per-channel PReLU."""
    for name, module in target.named_modules():
        key = f"{name}.weight"
        if isinstance(module, MeanShift) and key not in ours:
            for part, value in _mean_shift(module, layout.rgb_range).items():
                ours[f"{name}.{part}"] = value
        if isinstance(module, nn.PReLU) and key in ours and ours[key].numel() == 1:
            ours[key] = ours[key].expand(module.num_parameters).clone()


def differences(
    ours: Tensors, expected: Mapping[str, Tensor], origin: Mapping[str, str], unmapped: list[str]
) -> list[str]:
    """Readable lines naming missing, unexpected and wrongly shaped keys (5 of each)."""
    missing = [k for k in expected if k not in ours]
    unexpected = unmapped + [origin.get(k, k) for k in ours if k not in expected]
    wrong = [
        f"{origin.get(k, k)} {shape(v)} where {shape(expected[k])} is expected"
        for k, v in ours.items() if k in expected and v.shape != expected[k].shape
    ]
    lines = []
    for label, items in (("missing (our names)", missing), ("unexpected", unexpected),
                         ("wrong shape", wrong)):
        if items:
            more = f" and {len(items) - 5} more" if len(items) > 5 else ""
            lines.append(f"{label}: {'; '.join(items[:5])}{more}")
    return lines


def mismatch_error(
    layout: str, found: Architecture, wanted: Architecture, what: str, scale_keys: str,
    differences: list[str],
) -> ValueError:
    """The error for a checkpoint that does not fit: what it holds, what was wanted, and
    which keys and shapes differ."""
    if found.family == wanted.family and found.sizes == wanted.sizes:
        headline = f"is for x{found.scale} (upsampler {scale_keys})"
    else:
        headline = f"holds {found}"
    return ValueError(f"this {layout} checkpoint {headline}, but {what} is {wanted}"
                      + "".join(f"\n  {line}" for line in differences))


@dataclass(frozen=True)
class Family:
    """Models whose released checkpoints share key layouts and one way of reading their
    architecture: what the conversion pipeline needs to know about them."""

    title: str  # "EDSR, RDN or RCAN": what a checkpoint in none of the layouts is not
    specs: Mapping[str, ModelSpec]
    layouts: tuple[Layout, ...]
    releases: tuple[ReleasedWeights, ...]
    read: Reader  # may raise a KeyError for a key the state dict lacks
    upsampler: str  # our keys of the convolutions that fix the scale
    tensors: Callable[[Mapping[str, Any]], Tensors] = state_tensors
    open: Callable[[Path], Mapping[str, Any]] = read_checkpoint  # a file -> checkpoint
    suffix: str | None = None  # its releases' file suffix; None: PyTorch or safetensors
    # None: checkpoints load into the registered models as built. Else the builder options
    # (sizes, the authors' test-time conventions) that a checkpoint of an architecture needs.
    options: Options | None = None

    def layout(self, tensors: Tensors) -> Layout:
        """The layout whose marker key `tensors` has, or a ValueError listing the markers."""
        for layout in self.layouts:
            if layout.marker in tensors:
                return layout
        known = "; ".join(f"{layout.name}: {layout.marker}" for layout in self.layouts)
        raise ValueError(
            f"not an {self.title} checkpoint in a known layout: it has keys like "
            f"{', '.join(list(tensors)[:4])}; each known layout has one key ({known})"
        )

    def describe(
        self, state: Mapping[str, Tensor], origin: Mapping[str, str] | None = None
    ) -> Architecture:
        """The family, scale and sizes of a state dict in superres's key layout (`origin`
        gives the checkpoint's own names for error messages)."""
        def name(key: str) -> str:
            return (origin or {}).get(key, key)

        try:
            return self.read(state, name)
        except KeyError as err:
            raise ValueError(f"cannot read the architecture: no {name(err.args[0])}") from err

    def convert_for(
        self, state: Mapping[str, Any], target: nn.Module, what: str = "the model"
    ) -> Tensors:
        """`state`, a released checkpoint in any of the family's layouts, as a state dict for
        `target` (a network of the family, any sizes), or a ValueError saying what the
        checkpoint is and which keys and shapes do not fit."""
        tensors = self.tensors(state)
        layout = self.layout(tensors)
        ours, origin, unmapped = rename(tensors, layout)
        _complete(ours, target, layout)
        expected = target.state_dict()
        found, wanted = self.describe(ours, origin), self.describe(expected)
        lines = differences(ours, expected, origin, unmapped)
        if found != wanted or lines:
            raise mismatch_error(layout.name, found, wanted, what,
                                 self._scale_keys(ours, origin), lines)
        return {key: ours[key] for key in expected}

    def _scale_keys(self, ours: Tensors, origin: Mapping[str, str]) -> str:
        """The checkpoint's convolutions that fix the scale, with their shapes."""
        return ", ".join(f"{origin[k]} {shape(v)}" for k, v in ours.items()
                         if re.fullmatch(self.upsampler, k) and v.ndim == 4)

    def architecture(self, state: Mapping[str, Any]) -> Architecture:
        """What a released checkpoint holds, read from its tensors."""
        tensors = self.tensors(state)
        ours, origin, _ = rename(tensors, self.layout(tensors))
        return self.describe(ours, origin)

    def convert(
        self, state: Mapping[str, Any], model_name: str, scale: int
    ) -> tuple[Tensors, dict[str, Any]]:
        """A released checkpoint as the state dict of superres's `model_name` at `scale`, and
        the builder options it needs (`options`; {} where the registered model fits); a
        checkpoint of another architecture, size or scale is refused with a ValueError."""
        _, spec = find_model(model_name, (self,))
        spec.check_scale(scale)
        what = f"{model_name} x{scale}"
        with torch.device("meta"):  # shapes only: nothing is allocated or initialised
            target = spec.build(scale)
            options: dict[str, Any] = {}
            if self.options is not None:
                tensors = self.tensors(state)
                layout = self.layout(tensors)
                ours, origin, _ = rename(tensors, layout)
                found, wanted = self.describe(ours, origin), self.describe(target.state_dict())
                if found.family != wanted.family or found.scale not in (0, scale):
                    # another network or scale: what differs key by key says no more
                    raise mismatch_error(layout.name, found, wanted, what,
                                         self._scale_keys(ours, origin), [])
                options = self.options(state, found, scale)
                target = spec.build(scale, **options)
        return self.convert_for(state, target, what), options

    def convert_state_dict(
        self, state: Mapping[str, Any], model_name: str, scale: int
    ) -> Tensors:
        """A released checkpoint as the state dict of superres's `model_name` at `scale`; a
        checkpoint of another architecture, size or scale is refused with a ValueError."""
        return self.convert(state, model_name, scale)[0]

    def identify(self, state: Mapping[str, Any]) -> tuple[str, Architecture]:
        """The registered model a released checkpoint is, and what it holds: the model whose
        sizes it has or, where `options` builds other sizes, the first of its kind. A
        ValueError where none is, or where several are (SRResNet and SRGAN share theirs)."""
        found = self.architecture(state)
        fits, kind = [], []
        for name, spec in self.specs.items():
            scale = found.scale or spec.scales[0]
            if scale not in spec.scales:
                continue
            with torch.device("meta"):
                registered = self.describe(spec.build(scale).state_dict())
            fits += [name] if registered == found else []
            kind += [name] if registered.family == found.family else []
        if len(fits) > 1:
            raise ValueError(f"it holds {found}, which {' and '.join(fits)} are alike: name the "
                             "model (-m)")
        if not fits and (self.options is None or not kind):
            raise ValueError(f"it holds {found}, which none of {', '.join(self.specs)} is")
        return (fits or kind)[0], found


def find_model(model_name: str, families: Sequence[Family]) -> tuple[Family, ModelSpec]:
    """The family converting `model_name`'s checkpoints and its spec, or a ValueError naming
    the models that have a converter."""
    for family in families:
        if model_name in family.specs:
            return family, family.specs[model_name]
    known = ", ".join(name for family in families for name in family.specs)
    raise ValueError(f"no converter for {model_name!r}; known: {known}")


def early_cnn_architecture(state: Mapping[str, Tensor]) -> Architecture:
    """FSRCNN, VDSR or SRCNN from superres's own key layout of each (what the MATLAB releases
    and the PyTorch re-implementations are renamed to): the sizes their builders take."""
    if "upsampler.weight" in state:
        convs = [key for key, value in state.items()
                 if re.fullmatch(r"body\.\d+\.weight", key) and value.ndim == 4]  # no slopes
        sizes = (("d", state["body.0.weight"].shape[0]), ("s", state["body.2.weight"].shape[0]),
                 ("m", len(convs) - 3))
        return Architecture("fsrcnn", 0, sizes)
    if "body.body.0.weight" in state:
        depth = len(indices(state, r"body\.body\.(\d+)\.weight"))
        return Architecture("vdsr", 0, (("depth", depth),
                                        ("channels", state["body.body.0.weight"].shape[0])))
    kernels = tuple(state[f"body.{i}.weight"].shape[-1] for i in (0, 2, 4))
    sizes = (("kernels", kernels), ("n1", state["body.0.weight"].shape[0]),
             ("n2", state["body.2.weight"].shape[0]))
    return Architecture("srcnn", 0, sizes)


def fsrcnn_rule(pattern: str, weight: str, slope: str, last: int) -> Rule:
    """FSRCNN's layers as its releases number them (from 1: convolution, bias and PReLU slope
    of each, the deconvolution `last`) onto superres's keys; `pattern` captures the tensor's
    kind (`weight`, `slope`, or a bias) and its layer number."""

    def ours(m: re.Match[str]) -> str:
        layer = int(m[2])
        if m[1] == slope:
            return f"body.{2 * layer - 1}.weight"
        part = "weight" if m[1] == weight else "bias"
        return f"upsampler.{part}" if layer == last else f"body.{2 * layer - 2}.{part}"

    return (pattern, ours)
