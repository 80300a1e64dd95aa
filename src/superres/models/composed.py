"""Models composed from the survey's parts: a description (a mapping, or a YAML file holding
one) picks a framework (where upsampling happens), an upsampler, a body (the network design)
and their widths and depths, and becomes a `ModelSpec` like a named model's, so it trains,
evaluates, exports to ONNX and upscales through the same paths.

Every part is an existing component of `superres.nn`, so a description equal in structure to
a named model has its parameter count (FSRCNN, EDSR-baseline, VDSR, LapSRN, RDN, RCAN).
The schema, with examples, is docs/composed.md; a misspelt key or value is a ValueError that
names it and the choices. Initialisation is each component's own: PyTorch's defaults, except
RRDB's scaled-down He initialisation and the progressive image branch's bilinear start.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import yaml
from torch import nn

from superres.image.resize import KERNELS
from superres.models.registry import ModelSpec
from superres.nn.blocks.attention import residual_in_residual
from superres.nn.blocks.dense import DenseSkipBlocks, residual_dense_trunk
from superres.nn.blocks.projection import DenseBackProjection
from superres.nn.blocks.recursive import Recursive
from superres.nn.blocks.residual import Residual, ResidualBlock, ResidualGroup
from superres.nn.blocks.rrdb import RRDB
from superres.nn.frameworks import (
    LaplacianPyramid,
    PostUpsampling,
    PreUpsampling,
    PyramidLevel,
    pyramid_levels,
)
from superres.nn.layers import ACTIVATIONS, activation, conv, conv_stack
from superres.nn.upsamplers import (
    BilinearUpsampler,
    InterpolateConv,
    NearestConv,
    SubPixel,
    SubPixelUpsampler,
    TransposedConv,
    doublings,
)

# The description's short names of the registry's frameworks.
FRAMEWORKS = {"pre": "pre-upsampling", "post": "post-upsampling", "progressive": "progressive",
              "iterative": "iterative up-and-down"}
# The upsamplers each framework can use: pre-upsampling interpolates its input, progressive
# levels upsample features by 2, and iterative up-and-down sampling is DBPN's projections.
FEATURE_UPSAMPLERS = ("interp-conv", "transposed", "subpixel", "nearest-conv")
UPSAMPLERS = {"pre": ("interpolation",), "post": FEATURE_UPSAMPLERS,
              "progressive": FEATURE_UPSAMPLERS, "iterative": ("back-projection",)}
SCALES = (2, 3, 4, 8)
# Pyramids, back-projection geometries and nearest x2 stages reach powers of two only.
POWERS_OF_TWO = (2, 4, 8)
DESCRIPTION_SUFFIXES = (".yaml", ".yml")
PAPER = "composed from superres.nn components (docs/composed.md)"

_REQUIRED: Any = object()


@dataclass(frozen=True)
class Rule:
    """What one key of a description accepts, in words for the error, and its default."""

    expects: str
    accepts: Callable[[Any], bool]
    default: Any = _REQUIRED


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def count(default: Any = _REQUIRED) -> Rule:
    return Rule("an integer >= 1", lambda v: _integer(v) and v >= 1, default)


def kernel(default: int) -> Rule:
    """An odd size: 'same' padding keeps the image size, and TransposedConv centres it."""
    return Rule("an odd integer >= 1", lambda v: _integer(v) and v >= 1 and v % 2 == 1, default)


def positive(default: float) -> Rule:
    return Rule("a number > 0", lambda v: (_integer(v) or isinstance(v, float)) and v > 0,
                default)


def flag(default: bool) -> Rule:
    return Rule("true or false", lambda v: isinstance(v, bool), default)


def choice(options: Iterable[str], default: Any = _REQUIRED) -> Rule:
    options = tuple(options)
    return Rule(f"one of {', '.join(options)}", lambda v: v in options, default)


def mapping(default: Any = _REQUIRED) -> Rule:
    return Rule("a mapping", lambda v: isinstance(v, Mapping), default)


# The name becomes part of file names (weights, ONNX exports), so it is kept to safe letters.
NAME = Rule("a name of letters, digits, '.', '_' and '-'",
            lambda v: isinstance(v, str) and bool(re.fullmatch(r"[A-Za-z0-9][\w.-]*", v, re.A)),
            "composed")
TOP = {
    "name": NAME,
    "framework": choice(FRAMEWORKS),
    "color": choice(("y", "rgb")),
    "activation": choice(ACTIVATIONS, "relu"),
    "head": mapping(),
    "body": mapping(),
    "upsampler": mapping(None),
    "tail": Rule("a mapping or null", lambda v: v is None or isinstance(v, Mapping), {}),
    "global_residual": flag(False),
    "share_levels": flag(False),
}
UPSAMPLER_RULES = {
    "interpolation": {"mode": choice(KERNELS, "cubic")},
    "interp-conv": {"mode": choice(KERNELS, "cubic"), "kernel": kernel(3)},
    "transposed": {"kernel": kernel(9)},
    "subpixel": {"kernel": kernel(3)},
    "nearest-conv": {},
    "back-projection": {"stages": count()},
}


def body_rules(width: int) -> dict[str, dict[str, Rule]]:
    """The keys of each body type; its width defaults to the head's."""
    channels = count(width)
    return {
        "plain": {"blocks": count(), "channels": channels, "kernel": kernel(3)},
        "residual": {"blocks": count(), "channels": channels, "kernel": kernel(3),
                     "res_scale": positive(1.0)},
        "recursive": {"blocks": count(1), "recursions": count(), "channels": channels,
                      "kernel": kernel(3), "shared_source": flag(True)},
        "dense": {"blocks": count(), "layers": count(), "growth": count(), "channels": channels,
                  "skip": choice(("all", "hl", "h"), "all")},
        "residual-dense": {"blocks": count(), "layers": count(), "growth": count(),
                           "channels": channels},
        "attention": {"groups": count(), "blocks": count(), "channels": channels,
                      "reduction": count(16)},
        "rrdb": {"blocks": count(), "channels": channels, "growth": count(32),
                 "res_scale": positive(0.2)},
    }


def _parse(values: Any, rules: Mapping[str, Rule], where: str) -> dict[str, Any]:
    """`values` checked against `rules`, defaults filled in; unknown keys are errors."""
    if not isinstance(values, Mapping):
        raise ValueError(f"{where}: expected a mapping, got {type(values).__name__}")
    unknown = sorted(map(str, set(values) - set(rules)))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}; known: "
                         f"{', '.join(rules) or 'none'}")
    parsed = {}
    for key, rule in rules.items():
        if key not in values:
            if rule.default is _REQUIRED:
                raise ValueError(f"{where}.{key} is missing: give {rule.expects}")
            parsed[key] = rule.default
        elif not rule.accepts(values[key]):
            raise ValueError(f"{where}.{key} is {values[key]!r}; expected {rule.expects}")
        else:
            parsed[key] = values[key]
    return parsed


def _typed(values: Any, rules: Mapping[str, Mapping[str, Rule]], where: str) -> dict[str, Any]:
    """A part whose `type` picks the rest of its keys."""
    kind = _parse({"type": values["type"]} if "type" in values else {},
                  {"type": choice(rules)}, where)["type"]
    return _parse(values, {"type": choice(rules), **rules[kind]}, where)


@dataclass(frozen=True)
class Composition:
    """A checked description: every key present, defaults filled in."""

    name: str
    framework: str
    color: str
    activation: str
    head: dict[str, Any]
    body: dict[str, Any]
    upsampler: dict[str, Any]
    tail: dict[str, Any] | None
    global_residual: bool
    share_levels: bool

    @property
    def image_channels(self) -> int:
        return 1 if self.color == "y" else 3

    @property
    def scales(self) -> tuple[int, ...]:
        if self.framework in ("progressive", "iterative") or (
                self.upsampler["type"] == "nearest-conv"):
            return POWERS_OF_TWO
        return SCALES


def parse(description: Any, where: str = "model") -> Composition:
    """Check a description strictly: an unknown key or value is a one-line ValueError that
    names it and what is accepted there."""
    top = _parse(description, TOP, where)
    framework = top["framework"]
    head = _parse(top["head"], {"channels": count(), "kernel": kernel(3),
                                "activation": choice((*ACTIVATIONS, "none"), top["activation"])},
                  f"{where}.head")
    body = _typed(top["body"], body_rules(head["channels"]), f"{where}.body")
    upsampler = top["upsampler"]
    if upsampler is None:
        if framework != "pre":
            raise ValueError(f"{where}.upsampler is missing: give a mapping whose type is one of "
                             f"{', '.join(UPSAMPLERS[framework])}")
        upsampler = {"type": "interpolation"}
    upsampler = _typed(upsampler, {t: UPSAMPLER_RULES[t] for t in UPSAMPLERS[framework]},
                       f"{where}.upsampler")
    tail = top["tail"]
    if tail is None and (framework != "post" or upsampler["type"] == "nearest-conv"):
        raise ValueError(f"{where}.tail: null (the upsampler makes the image) needs the post "
                         "framework and an upsampler other than nearest-conv")
    for key, only in (("global_residual", "pre"), ("share_levels", "progressive")):
        if top[key] and framework != only:
            raise ValueError(f"{where}.{key} is for the {only} framework, not {framework}")
    _check_body(body, f"{where}.body")
    return Composition(
        name=top["name"], framework=framework, color=top["color"],
        activation=top["activation"], head=head, body=body, upsampler=upsampler,
        tail=None if tail is None else _parse(tail, {"kernel": kernel(3)}, f"{where}.tail"),
        global_residual=top["global_residual"], share_levels=top["share_levels"],
    )


def _check_body(body: Mapping[str, Any], where: str) -> None:
    """What the blocks would refuse later, said with the description's keys."""
    width = body["channels"]
    if body["type"] == "dense" and body["skip"] != "all" and width != body["growth"] * body[
            "layers"]:
        raise ValueError(f"{where}: skip {body['skip']} chains the blocks, so channels "
                         f"({width}) must be growth x layers ({body['growth'] * body['layers']})")
    if body["type"] == "attention" and width < body["reduction"]:
        raise ValueError(f"{where}: channels ({width}) must be at least the reduction "
                         f"({body['reduction']})")


# ---------------------------------------------------------------------------- building


def _head(c: Composition) -> nn.Sequential:
    """Feature extraction: a convolution from the image, and its activation unless 'none'."""
    width, act = c.head["channels"], c.head["activation"]
    return nn.Sequential(conv(c.image_channels, width, c.head["kernel"]),
                         *([] if act == "none" else [activation(act, width)]))


def _body(c: Composition) -> nn.Module:
    """The network design at the body's own width, from `superres.nn.blocks`."""
    b = c.body
    kind, width = b["type"], b["channels"]
    if kind in ("plain", "recursive"):
        stack = conv_stack([width] * (b["blocks"] + 1), [b["kernel"]] * b["blocks"],
                           c.activation, last_activation=True)
        return stack if kind == "plain" else Recursive(stack, b["recursions"],
                                                       b["shared_source"])
    if kind == "residual":
        return ResidualGroup((ResidualBlock(width, b["res_scale"], b["kernel"])
                              for _ in range(b["blocks"])), width, b["kernel"])
    if kind == "dense":  # SRDenseNet: dense blocks and skips, then a 1x1 bottleneck
        dense = DenseSkipBlocks(width, b["growth"], b["layers"], b["blocks"], b["skip"])
        return nn.Sequential(dense, conv(dense.out_channels, width, 1),
                             activation(c.activation, width))
    if kind == "residual-dense":
        return residual_dense_trunk(b["blocks"], b["layers"], b["growth"], width)
    if kind == "attention":
        return residual_in_residual(b["groups"], b["blocks"], width, b["reduction"])
    return ResidualGroup((RRDB(width, b["growth"], b["res_scale"]) for _ in range(b["blocks"])),
                         width)


def _trunk(c: Composition) -> nn.Module:
    """The body; where its width differs from the head's, 1x1 convolutions (+ activation)
    shrink into it and expand out of it (FSRCNN's shrinking and expanding layers)."""
    head, width = c.head["channels"], c.body["channels"]
    if head == width:
        return _body(c)
    return nn.Sequential(conv(head, width, 1), activation(c.activation, width), _body(c),
                         conv(width, head, 1), activation(c.activation, head))


def _upsampler(c: Composition, channels: int, scale: int, to_image: bool = False) -> nn.Module:
    """The learned upsampler of `channels` feature maps, to as many maps or to the image:
    sub-pixel convolution in EDSR's x2 stages between features, in one step (ESPCN) to the
    image."""
    u = c.upsampler
    kind, out = u["type"], c.image_channels if to_image else channels
    if kind == "interp-conv":
        return InterpolateConv(channels, out, scale, u["kernel"], u["mode"])
    if kind == "transposed":
        return TransposedConv(channels, out, scale, u["kernel"])
    if kind == "subpixel":
        return (SubPixel if to_image else SubPixelUpsampler)(channels, out, scale, u["kernel"])
    return nn.Sequential(*(NearestConv(channels) for _ in range(doublings(scale))))


def _reconstruct(c: Composition, channels: int) -> nn.Conv2d:
    """The tail: a convolution from features to the image (never null here: `parse` allows
    that only where the upsampler makes the image)."""
    return conv(channels, c.image_channels, c.tail["kernel"])


def build(c: Composition, scale: int) -> nn.Module:
    """The network of `c` for `scale`."""
    width = c.head["channels"]
    if c.framework == "pre":
        net = nn.Sequential(_head(c), _trunk(c), _reconstruct(c, width))
        return PreUpsampling(Residual(net) if c.global_residual else net, scale,
                             c.upsampler["mode"])
    if c.framework == "post":
        if c.tail is None:
            return PostUpsampling(nn.Sequential(_head(c), _trunk(c)),
                                  _upsampler(c, width, scale, to_image=True))
        return PostUpsampling(nn.Sequential(_head(c), _trunk(c)), nn.Sequential(
            _upsampler(c, width, scale), _reconstruct(c, width)))
    if c.framework == "progressive":
        return LaplacianPyramid(_head(c), [
            _level(c) for _ in range(1 if c.share_levels else pyramid_levels(scale))
        ], scale)
    projections = DenseBackProjection(width, scale, c.upsampler["stages"])
    return nn.Sequential(OrderedDict(head=_head(c), body=_trunk(c), upsampler=projections,
                                     tail=_reconstruct(c, projections.out_channels)))


def _level(c: Composition) -> PyramidLevel:
    """A x2 pyramid level (LapSRN): the trunk, the feature upsampler and its activation
    (nearest-conv has its own), the band from the tail, the image by a bilinear start."""
    width = c.head["channels"]
    upsample = [_upsampler(c, width, 2)]
    if c.upsampler["type"] != "nearest-conv":
        upsample.append(activation(c.activation, width))
    return PyramidLevel(nn.Sequential(_trunk(c), *upsample), _reconstruct(c, width),
                        BilinearUpsampler(c.image_channels))


def summary(c: Composition) -> str:
    """One line for `superres models`: framework, widths and depths, upsampler, colour."""
    body = ", ".join(f"{k} {v}" for k, v in c.body.items() if k != "type")
    return (f"composed {FRAMEWORKS[c.framework]}: {c.head['channels']}-channel head, "
            f"{c.body['type']} body ({body}), {c.upsampler['type']} upsampler, "
            f"{'Y' if c.color == 'y' else 'RGB'}")


def compose(description: Any, where: str = "model") -> ModelSpec:
    """The `ModelSpec` of a described model, at the scales its upsampler reaches."""
    c = parse(description, where)
    return ModelSpec(name=c.name, summary=summary(c), paper=PAPER, scales=c.scales,
                     build=partial(build, c), color=c.color, framework=FRAMEWORKS[c.framework])


def read_description(path: Path) -> Mapping[str, Any]:
    """The description in a YAML file: its `model` mapping (so a recipe serves), or the
    whole file."""
    if not path.is_file():
        raise FileNotFoundError(f"no model description file {path}")
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ValueError(f"{path.name}: not valid YAML: {' '.join(str(err).split())}") from err
    if isinstance(values, Mapping) and "model" in values:
        values = values["model"]
    if not isinstance(values, Mapping):
        raise ValueError(f"{path.name}: expected a model description (a mapping), got "
                         f"{values!r}")
    return values


def compose_file(path: Path) -> ModelSpec:
    """The `ModelSpec` described in a YAML file; errors name the file."""
    return compose(read_description(path), where=f"{path.name}: model")
