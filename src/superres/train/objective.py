"""The training objective as weighted terms, the recipe's `losses`: pixel, perceptual, texture,
total variation, adversarial and cycle consistency (docs/losses.md has each with its paper).

`parse_losses` reads the terms strictly, so a misspelt key or name is an error naming it.
One `Objective` builds them, returns their weighted sum for (SR, HR, LR), keeps per-term
means for the log, and owns the parts with state: the discriminator and its optimiser (an
adversarial term) and the down-sampling network (a cycle term). The recipes written before
`losses` map onto it: `loss` alone is one pixel term and `gan` three terms
(`superres.train.recipe.Adversarial.terms`), so they train as they always did.
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from superres.image.resize import imresize
from superres.nn.layers import leaky_relu
from superres.nn.supervision import LossFn
from superres.nn.vgg import layer_names
from superres.train.adversarial import DISCRIMINATORS, SCALABLE_WIDTH, Adversary
from superres.train.losses import (
    ADVERSARIAL_LOSSES,
    FEATURE_DISTANCES,
    PIXEL_LOSSES,
    PerceptualLoss,
    TextureLoss,
    TVLoss,
    pixel_loss,
)

# ----------------------------------------------------------------------------- the terms


def _number(key: str, value: Any, *, positive: bool = False) -> float:
    number = not isinstance(value, bool) and isinstance(value, (int, float))
    if not number or value < 0 or (positive and value == 0):
        wanted = "a positive number" if positive else "a number of 0 or more"
        raise ValueError(f"{key} must be {wanted}, not {value!r}")
    return float(value)


def _choice(key: str, value: Any, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"{key} is {value!r}; choose one of {', '.join(choices)}")
    return value


def _layers(value: Any) -> dict[str, float]:
    """VGG19 layers with weights: a mapping, or a list that weighs each layer 1."""
    if isinstance(value, (list, tuple)) and all(isinstance(name, str) for name in value):
        value = dict.fromkeys(value, 1.0)
    if not isinstance(value, Mapping) or not value:
        raise ValueError(f"layers must map VGG19 layers to weights, e.g. {{relu2_2: 1.0}}, "
                         f"not {value!r}")
    known = layer_names("vgg19")
    for name in value:
        _choice("layers", name, known)
    return {name: _number(f"layers.{name}", weight) for name, weight in value.items()}


@dataclass(frozen=True)
class Term:
    """One weighted part of the generator's loss; `weight` multiplies its value."""

    weight: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "weight", _number("weight", self.weight))


@dataclass(frozen=True)
class PixelTerm(Term):
    """A distance between SR and HR pixels: what PSNR-oriented training minimises."""

    criterion: str = "l1"

    def __post_init__(self) -> None:
        super().__post_init__()
        _choice("criterion", self.criterion, tuple(PIXEL_LOSSES))


@dataclass(frozen=True)
class PerceptualTerm(Term):
    """Content loss: a distance between VGG19 features of SR and HR (see `PerceptualLoss`)."""

    layers: dict[str, float] = field(default_factory=lambda: {"relu2_2": 1.0})
    criterion: str = "l1"

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "layers", _layers(self.layers))
        _choice("criterion", self.criterion, tuple(FEATURE_DISTANCES))


@dataclass(frozen=True)
class TextureTerm(Term):
    """EnhanceNet's texture loss: Gram matrices of VGG19 features (see `TextureLoss`)."""

    layers: dict[str, float] = field(
        default_factory=lambda: {"relu1_1": 1.0, "relu2_1": 1.0, "relu3_1": 1.0})
    patch: int | None = 16  # side of the HR tiles matched one by one; None: the whole patch

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "layers", _layers(self.layers))
        if self.patch is not None and (type(self.patch) is not int or self.patch < 1):
            raise ValueError(f"patch must be a positive whole number or null, not "
                             f"{self.patch!r}")


@dataclass(frozen=True)
class TVTerm(Term):
    """Total variation of SR: a smoothness prior (see `TVLoss`)."""

    power: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "power", _number("power", self.power, positive=True))


@dataclass(frozen=True)
class AdversarialTerm(Term):
    """How a discriminator, trained alongside, judges SR (SRGAN, ESRGAN; ESRGAN's defaults)."""

    weight: float = 5e-3
    gan_loss: str = "ragan"
    discriminator: str = "esrgan"
    lr: float = 1e-4  # D's base rate; it follows the generator's schedule
    betas: tuple[float, float] = (0.9, 0.999)  # D's Adam
    width: int | None = None  # D's base width where it can shrink (unet); None: the paper's

    def __post_init__(self) -> None:
        super().__post_init__()
        _choice("gan_loss", self.gan_loss, tuple(ADVERSARIAL_LOSSES))
        _choice("discriminator", self.discriminator, tuple(DISCRIMINATORS))
        if self.width is not None:
            if isinstance(self.width, bool) or not isinstance(self.width, int) or self.width < 1:
                raise ValueError(f"width must be a positive integer, not {self.width!r}")
            if self.discriminator not in SCALABLE_WIDTH:
                raise ValueError(f"width applies to the {', '.join(SCALABLE_WIDTH)} "
                                 f"discriminator, not {self.discriminator!r}")
        object.__setattr__(self, "lr", _number("lr", self.lr, positive=True))
        betas = self.betas
        if not (isinstance(betas, (list, tuple)) and len(betas) == 2
                and all(not isinstance(b, bool) and isinstance(b, (int, float)) and 0 <= b < 1
                        for b in betas)):
            raise ValueError(f"betas must be two numbers in [0, 1), not {betas!r}")
        object.__setattr__(self, "betas", tuple(float(b) for b in betas))


@dataclass(frozen=True)
class CycleTerm(Term):
    """Cycle consistency (CycleGAN, CinCGAN): D_down(SR) must give back the LR input."""

    criterion: str = "l1"
    network: str = "conv"  # D_down: "conv", learned with the generator; "bicubic", fixed

    def __post_init__(self) -> None:
        super().__post_init__()
        _choice("criterion", self.criterion, tuple(PIXEL_LOSSES))
        _choice("network", self.network, tuple(DOWNSAMPLERS))


TERMS: dict[str, type[Term]] = {
    "pixel": PixelTerm,
    "perceptual": PerceptualTerm,
    "texture": TextureTerm,
    "tv": TVTerm,
    "adversarial": AdversarialTerm,
    "cycle": CycleTerm,
}


def parse_losses(values: Sequence[Any], where: str = "losses") -> tuple[Term, ...]:
    """The terms of a recipe's `losses` list; a ValueError names the term and key at fault."""
    if not isinstance(values, (list, tuple)):
        raise ValueError(f"{where} must be a list of terms, e.g. [{{type: pixel, weight: 1.0}}],"
                         f" not {values!r}")
    terms: list[Term] = []
    for i, entry in enumerate(values):
        at = f"{where}[{i}]"
        if not isinstance(entry, Mapping):
            raise ValueError(f"{at} must be a mapping with a type, e.g. {{type: pixel}}, "
                             f"not {entry!r}")
        kind = entry.get("type")
        if kind not in TERMS:
            raise ValueError(f"{at}.type is {kind!r}; choose one of {', '.join(TERMS)}")
        cls = TERMS[kind]
        known = {"type", *(f.name for f in fields(cls))}
        unknown = sorted(set(entry) - known)
        if unknown:
            raise ValueError(f"{at} ({kind}): unknown key(s) {', '.join(map(str, unknown))}; "
                             f"known: {', '.join(sorted(known))}")
        try:
            terms.append(cls(**{k: v for k, v in entry.items() if k != "type"}))
        except ValueError as err:
            raise ValueError(f"{at}.{err}") from None
    for cls, what in ((AdversarialTerm, "one discriminator"), (CycleTerm, "one D_down")):
        if sum(isinstance(term, cls) for term in terms) > 1:
            kind = next(k for k, c in TERMS.items() if c is cls)
            raise ValueError(f"{where}: more than one {kind} term; a run trains {what}")
    return tuple(terms)


# ----------------------------------------------------------------------------- D_down


class ConvDownsampler(nn.Module):
    """A learned D_down (CinCGAN learns its own): conv 3x3, a conv of kernel and stride
    `scale`, conv 3x3, added to the box average of SR. The last conv starts at zero, so D_down
    starts as the box filter and learns the degradation from there rather than from noise."""

    def __init__(self, channels: int, scale: int, width: int = 32) -> None:
        super().__init__()
        self.scale = scale
        self.body = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1), leaky_relu(),
            nn.Conv2d(width, width, scale, stride=scale), leaky_relu(),
            nn.Conv2d(width, channels, 3, padding=1),
        )
        nn.init.zeros_(self.body[-1].weight)
        nn.init.zeros_(self.body[-1].bias)

    def forward(self, sr: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(sr, self.scale) + self.body(sr)


class BicubicDownsampler(nn.Module):
    """A fixed D_down: MATLAB's bicubic `imresize`, the degradation of the standard
    benchmarks (differentiable, with nothing to learn). Every D_down is built from
    (channels, scale); this one is the same for any number of channels."""

    def __init__(self, channels: int, scale: int) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, sr: torch.Tensor) -> torch.Tensor:
        return imresize(sr, 1 / self.scale)


DOWNSAMPLERS: dict[str, Callable[[int, int], nn.Module]] = {
    "conv": ConvDownsampler,
    "bicubic": BicubicDownsampler,
}


# ----------------------------------------------------------------------------- the objective

Part = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def _labels(terms: Sequence[Term]) -> list[str]:
    """Each term's name in the log: its type, numbered from the second of a type on."""
    kinds = [next(k for k, cls in TERMS.items() if type(term) is cls) for term in terms]
    return [kind if kinds[:i].count(kind) == 0 else f"{kind}_{kinds[:i].count(kind) + 1}"
            for i, kind in enumerate(kinds)]


class Objective:
    """The generator's weighted sum of terms, and what the terms need besides G.

    The adversarial term comes first, built, updated and summed: D steps before G is judged,
    and the sum's order is the GAN stage's, so that its runs give the same numbers; the other
    terms follow in the recipe's order. A cycle term's learned D_down is optimised with the
    generator: `join` adds its parameters to G's optimiser as one more group, so they follow
    G's rate, schedule and steps, and their moments are saved with G's optimiser state.
    """

    def __init__(self, terms: Sequence[Term], *, scale: int, hr_patch: int, channels: int,
                 base_lr: float, log_terms: bool = False) -> None:
        if not terms:
            raise ValueError("an objective needs at least one term")
        order = sorted(range(len(terms)), key=lambda i: not isinstance(terms[i], AdversarialTerm))
        labels = _labels(terms)
        self.terms = {labels[i]: terms[i] for i in order}
        self.scale = scale
        self.adversary: Adversary | None = None
        self.downsampler: nn.Module | None = None
        self.downsampler_net: nn.Module | None = None  # D_down, or its distributed wrapper
        self.modules: list[nn.Module] = []
        self.parts: dict[str, Part] = {}
        for label, term in self.terms.items():
            if channels != 3 and isinstance(term, (PerceptualTerm, TextureTerm, AdversarialTerm)):
                raise ValueError(f"the {label} term judges RGB images; this model's output has "
                                 f"{channels} channel(s) (train it on RGB, or drop the term)")
            self.parts[label] = self._part(term, scale, hr_patch, channels, base_lr)
        # Per-term columns only where the recipe wrote its terms, and they are several: the
        # `loss` column alone holds a single term, and older logs keep their columns.
        self.log_fields = [f"loss_{label}" for label in self.terms] if (
            log_terms and len(self.terms) > 1) else []
        self._sums = dict.fromkeys(self.terms, 0.0)
        self._count = 0

    def _part(self, term: Term, scale: int, hr_patch: int, channels: int,
              base_lr: float) -> Part:
        """The unweighted value of `term` as a function of (sr, hr, lr)."""
        if isinstance(term, PixelTerm):
            criterion = pixel_loss(term.criterion)
            return lambda sr, hr, lr: criterion(sr, hr)
        if isinstance(term, (PerceptualTerm, TextureTerm)):
            # Never random features: both refuse to start without VGG weights.
            module = (PerceptualLoss(term.layers, term.criterion)
                      if isinstance(term, PerceptualTerm) else TextureLoss(term.layers, term.patch))
            self.modules.append(module)
            return lambda sr, hr, lr: module(sr, hr)
        if isinstance(term, TVTerm):
            tv = TVLoss(term.power)
            return lambda sr, hr, lr: tv(sr)
        if isinstance(term, AdversarialTerm):
            adversary = Adversary(term.discriminator, term.gan_loss, hr_patch, term.lr,
                                  term.betas, base_lr, term.width)
            self.adversary = adversary
            self.modules.append(adversary.discriminator)
            return lambda sr, hr, lr: adversary.generator_loss(sr, hr)
        if isinstance(term, CycleTerm):
            down = DOWNSAMPLERS[term.network](channels, scale)
            criterion = pixel_loss(term.criterion)
            self.downsampler = self.downsampler_net = down
            self.modules.append(down)
            return lambda sr, hr, lr: criterion(self.downsampler_net(sr), self._lr_input(lr, sr))
        raise TypeError(f"no loss for {type(term).__name__}")

    def _lr_input(self, lr: torch.Tensor, sr: torch.Tensor) -> torch.Tensor:
        if lr.shape[-2:] != (sr.shape[-2] // self.scale, sr.shape[-1] // self.scale):
            raise ValueError(f"cycle consistency compares D_down(SR) with the LR input at "
                             f"1/{self.scale} of SR, but the input is {tuple(lr.shape[-2:])} "
                             f"for SR of {tuple(sr.shape[-2:])} (a pre-upsampled input?)")
        return lr

    def _stateful(self) -> dict[str, Adversary | nn.Module | None]:
        """The parts whose state a checkpoint keeps, by checkpoint key (a fixed D_down has
        none)."""
        learned = self.downsampler is not None and bool(list(self.downsampler.parameters()))
        return {"adversarial": self.adversary, "cycle": self.downsampler if learned else None}

    def join(self, optimizer: torch.optim.Optimizer) -> None:
        """Let the generator's optimiser train a learned D_down too (see the class)."""
        learned = self._stateful()["cycle"]
        if learned is not None:
            optimizer.add_param_group({"params": list(learned.parameters()), "multiplier": 1.0})

    def distribute(self, wrap: Callable[[nn.Module], nn.Module]) -> None:
        """Average the gradients of D and of a learned D_down over the ranks of a distributed
        run: `wrap` is DistributedDataParallel (the VGG features have none)."""
        if self.adversary is not None:
            self.adversary.distribute(wrap)
        if self._stateful()["cycle"] is not None:
            self.downsampler_net = wrap(self.downsampler)

    def to(self, device: torch.device) -> Objective:
        """Move the VGG features, D (with its optimiser's future state) and D_down."""
        for module in self.modules:
            module.to(device)
        return self

    def values(self, sr: torch.Tensor, hr: torch.Tensor,
               lr: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each term's weighted value, by log label; D is not updated."""
        return {label: term.weight * self.parts[label](sr, hr, lr)
                for label, term in self.terms.items()}

    def loss(self, sr: torch.Tensor, hr: torch.Tensor, lr: torch.Tensor,
             rate: float) -> torch.Tensor:
        """One training step's loss for G: D's update first (an adversarial term; `rate` is
        G's learning rate now, which D's follows), then the weighted sum of the terms."""
        if self.adversary is not None:
            self.adversary.discriminator_step(sr, hr, rate)
        values = self.values(sr, hr, lr)
        total = functools.reduce(operator.add, values.values())
        if self.log_fields:
            for label, value in values.items():
                self._sums[label] += float(value.detach())
            self._count += 1
        return total

    def supervised_loss_fn(self, model: str) -> LossFn:
        """The weighted criterion handed to a multi-supervised model (DRCN, LapSRN), which
        applies it to each of its outputs: only a lone pixel term can be handed over."""
        term, *others = self.terms.values()
        if others or not isinstance(term, PixelTerm):
            raise ValueError(f"{model} trains through its own multi-output loss, which takes "
                             f"one pixel criterion; its losses can only be one pixel term, not "
                             f"{', '.join(self.terms)}")
        criterion, weight = pixel_loss(term.criterion), term.weight
        return lambda sr, hr: weight * criterion(sr, hr)

    def log_row(self) -> dict[str, Any]:
        """The log's `d_loss` (D's last loss) and per-term means since the last row."""
        row: dict[str, Any] = {
            "d_loss": round(self.adversary.last_d_loss, 6) if self.adversary else ""}
        for label in self.terms if self.log_fields else ():
            row[f"loss_{label}"] = self._sums[label] / self._count if self._count else math.nan
        self._sums = dict.fromkeys(self.terms, 0.0)
        self._count = 0
        return row

    def state_dict(self) -> dict[str, Any]:
        """Checkpoint entries for exact resume beyond G's: D and its optimiser under
        `adversarial` (the GAN stage's key), a learned D_down's weights under `cycle` (its
        moments are in G's optimiser); None where the objective has no such part."""
        return {key: part.state_dict() if part is not None else None
                for key, part in self._stateful().items()}

    def load_state_dict(self, checkpoint: Mapping[str, Any]) -> None:
        """Restore this objective's entries of a training checkpoint (see `state_dict`)."""
        for key, part in self._stateful().items():
            if part is None:
                continue
            if checkpoint.get(key) is None:
                raise ValueError(f"the checkpoint holds no {key} state for this objective's "
                                 f"{key} term")
            part.load_state_dict(checkpoint[key])
