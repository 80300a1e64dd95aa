"""Training recipes: YAML files parsed into dataclasses, so a misspelt key is an error."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import UnionType
from typing import Any, Union, get_args, get_origin, get_type_hints

import yaml

from superres.image.degrade import parse_degradation
from superres.train.objective import CycleTerm, PixelTerm, parse_losses


@dataclass(frozen=True)
class Data:
    """Training pairs: HR sets, LR patch size, batch size, augmentation."""

    train: tuple[str, ...] = ("T91", "BSD200")
    patch: int = 32  # LR patch side at `scale`; the HR patch is patch * scale at every scale
    batch: int = 32
    augment: bool = True  # random flips and 90-degree rotations
    # Scale augmentation (LapSRN): each patch comes from its HR image downscaled by a factor
    # drawn from this list, e.g. [0.5, 0.6, 0.7, 0.8, 0.9, 1.0]; empty: off.
    scale_augment: tuple[float, ...] = ()
    # Whole aligned faces with their landmark heatmaps (`superres.train.faces`), for a face
    # network whose prior branch learns the landmarks (FSRNet; its no-prior ablation trains on
    # the same batches and ignores the heatmaps); `patch` is then unused.
    landmarks: bool = False
    # With `landmarks`: each face's crop is jittered, zoomed about its centre by a factor drawn
    # log-uniformly in [1/face_zoom, face_zoom] and shifted by up to face_shift HR pixels each
    # way (landmarks moved along, LR made again), as the test sets' crops differ from the
    # training faces'. 1 and 0: off.
    face_zoom: float = 1.0
    face_shift: float = 0.0


@dataclass(frozen=True)
class Optimizer:
    """Adam or SGD. `lr_multipliers` scales the rate of parameters by name: a plain key is a
    name prefix (`body.4`, SRCNN's last layer; the longest matching prefix wins), a key with
    `*` or `?` is a pattern on the whole name (`*.bias`, LapSRN's biases) whose value
    multiplies the rate on top of the prefix's."""

    name: str = "adam"
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    momentum: float = 0.9
    weight_decay: float = 0.0
    lr_multipliers: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Schedule:
    """Learning-rate schedule over `steps`: constant, step (x gamma every step_size),
    multistep (x gamma at each of `milestones`, as SRGAN/ESRGAN train) or cosine."""

    name: str = "cosine"
    steps: int = 100_000
    step_size: int = 50_000
    milestones: tuple[int, ...] = ()
    gamma: float = 0.5
    min_lr: float = 1e-6
    warmup: int = 0


@dataclass(frozen=True)
class Adversarial:
    """The GAN stage (SRGAN, ESRGAN): discriminator, its optimiser, and G's loss weights.

    ESRGAN's defaults: RaGAN at 5e-3, L1 pixel loss at 1e-2, VGG19 conv5_4 (before the
    ReLU) L1 content loss at 1, Adam 1e-4 (0.9, 0.999) for both networks.
    """

    discriminator: str = "esrgan"  # "srgan" (96 px patches) or "esrgan" (VGG-128)
    gan_loss: str = "ragan"  # vanilla | lsgan | hinge | ragan
    weight: float = 5e-3
    pixel_weight: float = 1e-2  # of the recipe's `loss`
    perceptual_layers: dict[str, float] = field(default_factory=lambda: {"conv5_4": 1.0})
    perceptual_criterion: str = "l1"
    perceptual_weight: float = 1.0
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)

    def terms(self, pixel: str) -> tuple[dict[str, Any], ...]:
        """This stage as `losses` terms: the recipe's `pixel` loss at `pixel_weight`, the
        perceptual and the adversarial term. Zero-weighted pixel and perceptual terms are left
        out, as the stage always did."""
        terms: list[dict[str, Any]] = []
        if self.pixel_weight:
            terms.append({"type": "pixel", "criterion": pixel, "weight": self.pixel_weight})
        if self.perceptual_weight:
            terms.append({"type": "perceptual", "layers": dict(self.perceptual_layers),
                          "criterion": self.perceptual_criterion,
                          "weight": self.perceptual_weight})
        terms.append({"type": "adversarial", "gan_loss": self.gan_loss, "weight": self.weight,
                      "discriminator": self.discriminator, "lr": self.lr,
                      "betas": tuple(self.betas)})
        return tuple(terms)


UNPAIRED_METHODS = ("h2l", "l2h", "cincgan")


@dataclass(frozen=True)
class Unpaired:
    """Unpaired training (docs/unsupervised.md; `superres.train.unpaired_gan`): `method` h2l
    then l2h (Bulat et al.'s two steps) or cincgan (Yuan et al.). `lr` holds the real LR
    images (folders or registered sets), never paired with the HR images of `data.train`.
    The generators and discriminators beside the SR network (`model`) have `width` features
    and `blocks` residual blocks per group; `weights` overrides the paper's loss weights by
    term; `gan_loss` empty is the paper's (hinge for the two steps, lsgan for cincgan)."""

    method: str
    lr: tuple[str, ...] = ()
    degrader: str | None = None  # l2h: the h2l run's degrader.safetensors
    noise: int = 64  # h2l, l2h: length of the High-to-Low generator's noise vector
    width: int = 64
    blocks: int = 2
    gan_loss: str = ""
    d_lr: float = 1e-4  # the discriminators' base rate; it follows the generators' schedule
    d_betas: tuple[float, float] = (0.5, 0.999)
    weights: dict[str, float] = field(default_factory=dict)
    inner_steps: int = 0  # cincgan: steps of the inner cycle (and SR pre-training) alone
    # h2l: 0, the paper's losses on whole images; an odd size, Fritsche et al.'s frequency
    # separation: the pixel loss on a box low-pass of that size, the GAN on the rest
    frequency_split: int = 0

    def __post_init__(self) -> None:
        if self.method not in UNPAIRED_METHODS:
            raise ValueError(f"unpaired.method is {self.method!r}; choose one of "
                             f"{', '.join(UNPAIRED_METHODS)}")
        if self.method == "l2h" and not self.degrader:
            raise ValueError("unpaired.degrader: l2h trains on the LR that an h2l run's "
                             "generator makes; name its degrader.safetensors")
        if self.method != "l2h" and not self.lr:
            raise ValueError(f"unpaired.lr: {self.method} needs the real LR images (folders "
                             "or registered sets)")
        for key in ("noise", "width", "blocks"):
            if getattr(self, key) < 1:
                raise ValueError(f"unpaired.{key} must be at least 1, not {getattr(self, key)}")
        if self.frequency_split and (self.method != "h2l" or self.frequency_split < 3
                                     or self.frequency_split % 2 == 0):
            raise ValueError("unpaired.frequency_split is h2l's odd low-pass size (3 or more), "
                             f"or 0 for whole images; not {self.frequency_split} for "
                             f"{self.method}")
        if self.inner_steps < 0 or (self.inner_steps and self.method != "cincgan"):
            raise ValueError("unpaired.inner_steps is a number of steps of cincgan's inner "
                             "cycle, 0 or more")


@dataclass(frozen=True)
class Phase:
    """A stretch of a curriculum: until step `until`, train at `scale` on `degradation`."""

    until: int
    scale: int
    degradation: Any


@dataclass(frozen=True)
class Recipe:
    """Everything that defines a training run."""

    # A registered model's name, or a model composed from the survey's parts (a mapping; see
    # `superres.models.composed`).
    model: str | dict[str, Any]
    scale: int
    # Multi-scale training (VDSR): every sample's scale is drawn from these, e.g. [2, 3, 4],
    # and one set of weights serves them all; `scale` (one of them) picks the best weights.
    # Empty: `scale` alone. Only for pre-upsampling models, whose network is scale-free.
    scales: tuple[int, ...] = ()
    seed: int = 0
    loss: str = "mse"
    # "mean" over all pixels, or "sum" over each image's pixels and mean over the batch, as
    # Caffe/MatConvNet losses are: the papers' SGD learning rates assume the latter.
    loss_reduction: str = "mean"
    # HR pixels at each edge of a patch left out of the loss. Zero padding makes a patch's
    # border unlike an image's interior; the papers train with valid convolutions and score
    # only the centre (SRCNN: 21x21 of 33x33), which this restores. 0: every pixel counts.
    loss_border: int = 0
    data: Data = Data()
    optimizer: Optimizer = Optimizer()
    schedule: Schedule = Schedule()
    clip_grad: float | None = None  # max gradient norm, or theta for clip_mode adjustable
    clip_mode: str = "norm"  # "norm", or "adjustable": clip each gradient to +-theta / lr (VDSR)
    ema: float | None = None  # decay of an exponential moving average of the weights
    validate_on: str = "Set5"
    validate_every: int = 2000
    checkpoint_every: int = 1000
    init: str | None = None  # weights to start from (safetensors), e.g. FSRCNN's x3 model
    trainable: tuple[str, ...] = ()  # parameter-name prefixes to train; empty: all
    # Automatic mixed precision: float32 (off), bfloat16, or float16 with a gradient scaler.
    precision: str = "float32"
    compile: bool = False  # torch.compile the model's training forward pass
    gan: Adversarial | None = None  # the GAN stage; start it from a PSNR run with `init`
    # How LR is made from HR, per patch: a name or a mapping, or a list of them chained (see
    # `superres.image.degrade`); bicubic (exact MATLAB) by default.
    degradation: Any = "bicubic"
    # The training loss as weighted terms (docs/losses.md, `superres.train.objective`);
    # empty: `loss` alone, or the `gan` stage's terms when there is one.
    losses: tuple[dict[str, Any], ...] = ()
    # A multi-supervised model's own loss weights by term, over its defaults
    # (`MultiSupervised.loss_weights`; VESPCN: motion, smoothness; FSRNet: prior).
    model_loss: dict[str, float] = field(default_factory=dict)
    # Easy to hard: a list of phases, each with the step it lasts `until` and what it changes.
    curriculum: tuple[dict[str, Any], ...] = ()
    # Unpaired training of several networks (`Unpaired`); None: the paired trainer.
    unpaired: Unpaired | None = None
    notes: str = ""

    def __post_init__(self) -> None:
        choices = {
            "loss": (self.loss, ("l1", "mse", "charbonnier")),
            "loss_reduction": (self.loss_reduction, ("mean", "sum")),
            "clip_mode": (self.clip_mode, ("norm", "adjustable")),
            "precision": (self.precision, ("float32", "bfloat16", "float16")),
            "optimizer.name": (self.optimizer.name, ("adam", "sgd")),
            "schedule.name": (self.schedule.name, ("constant", "step", "multistep", "cosine")),
        }
        for key, (value, allowed) in choices.items():
            if value not in allowed:
                raise ValueError(f"{key} is {value!r}; choose one of {', '.join(allowed)}")
        if self.schedule.name == "multistep" and list(self.schedule.milestones) != sorted(
            set(self.schedule.milestones)
        ):
            raise ValueError("schedule.milestones must be increasing steps, e.g. [50000, 100000]")
        distinct = len(set(self.scales)) == len(self.scales)
        if self.scales and not (distinct and self.scale in self.scales and min(self.scales) > 1):
            raise ValueError(f"scales {list(self.scales)} must be distinct factors of 2 or more "
                             f"that include scale {self.scale}")
        if not 0 <= 2 * self.loss_border < self.data.patch * self.scale:
            raise ValueError(f"loss_border {self.loss_border} must leave pixels of the "
                             f"{self.data.patch * self.scale}-pixel HR patch to score")
        if self.loss_border and self.gan:
            raise ValueError("loss_border is for PSNR training; the GAN stage scores whole "
                             "patches")
        self._check_losses()
        if self.unpaired and (self.losses or self.gan or self.curriculum or self.scales):
            raise ValueError("unpaired sets its methods' own losses and one scale: leave "
                             "losses, gan, curriculum and scales unset")
        if any(not 0 < factor <= 1 for factor in self.data.scale_augment):
            raise ValueError(f"data.scale_augment {list(self.data.scale_augment)}: downscaling "
                             "factors must lie in (0, 1], e.g. [0.5, 0.6, 0.7, 0.8, 0.9, 1.0]")
        if self.data.landmarks and (self.scales or self.data.scale_augment or self.curriculum
                                    or not parse_degradation(self.degradation).is_bicubic):
            raise ValueError("data.landmarks trains on whole faces at one scale with bicubic "
                             "LR: leave scales, data.scale_augment, curriculum and degradation "
                             "unset")
        if (self.data.face_zoom != 1 or self.data.face_shift) and not self.data.landmarks:
            raise ValueError("data.face_zoom and data.face_shift jitter whole faces: set "
                             "data.landmarks: true")
        if self.data.face_zoom < 1 or self.data.face_shift < 0:
            raise ValueError(f"data.face_zoom {self.data.face_zoom} must be 1 or more and "
                             f"data.face_shift {self.data.face_shift} 0 or more")
        for phase in self.phases():  # a mistake names the key
            degradation = parse_degradation(phase.degradation)
            if not degradation.is_bicubic and (self.scales or self.data.scale_augment):
                raise ValueError(f"degradation {degradation}: scales and data.scale_augment "
                                 "make bicubic LR only")

    def phases(self) -> tuple[Phase, ...]:
        """The curriculum's phases, easy to hard, then the recipe's own task (its `scale` and
        `degradation`) to the end of the schedule; without a curriculum, that task alone."""
        own = Phase(self.schedule.steps, self.scale, self.degradation)
        if not self.curriculum:
            return (own,)
        phases = []
        for i, values in enumerate(self.curriculum):
            where = f"curriculum[{i}]"
            if not isinstance(values, dict):
                raise ValueError(f"{where}: expected a mapping such as {{until: 10000, scale: 2}}")
            unknown = sorted(set(values) - {"until", "scale", "degradation"})
            if unknown or "until" not in values:
                raise ValueError(f"{where}: needs `until` (a step) and may set scale and "
                                 f"degradation; unknown key(s): {', '.join(unknown) or 'none'}")
            phase = Phase(_checked(values["until"], int, f"{where}.until"),
                          _checked(values.get("scale", self.scale), int, f"{where}.scale"),
                          values.get("degradation", self.degradation))
            parse_degradation(phase.degradation, where=f"{where}.degradation")
            previous = phases[-1].until if phases else 0
            if not previous < phase.until < self.schedule.steps:
                raise ValueError(f"{where}.until {phase.until} must follow {previous} and come "
                                 f"before the end of the schedule ({self.schedule.steps})")
            if phase.scale != self.scale and not (
                    2 <= phase.scale < self.scale and self.scale % phase.scale == 0
                    and phase.scale & (phase.scale - 1) == 0):
                raise ValueError(f"{where}.scale {phase.scale}: a scale curriculum climbs the "
                                 f"x2 steps of a pyramid to {self.scale} (2, 4, ...)")
            phases.append(phase)
        if self.scales and any(p.scale != self.scale for p in phases):
            raise ValueError("curriculum scales and multi-scale training (scales) both pick "
                             "the scale of a sample: use one")
        return (*phases, own)

    def _check_losses(self) -> None:
        """`losses` (and the `gan` stage, as terms) parsed strictly, and the options that
        cannot go with its terms."""
        terms = parse_losses(self.losses)
        if self.gan:
            parse_losses(self.gan.terms(self.loss), where="gan's terms")
        if not terms:
            return
        if self.gan:
            raise ValueError("gan and losses are both set: write the GAN stage as terms of "
                             "losses (pixel, perceptual, adversarial; see docs/losses.md)")
        if self.loss != "mse":  # the default: `loss` is not used when `losses` is given
            raise ValueError(f"loss is {self.loss!r} and losses is set: give the criterion "
                             "in a pixel term of losses")
        if self.loss_border and not all(isinstance(t, PixelTerm) for t in terms):
            raise ValueError("loss_border is for pixel terms alone: the other terms of losses "
                             "judge whole patches")
        if self.scales and any(isinstance(t, CycleTerm) for t in terms):
            raise ValueError("a cycle term downscales SR by `scale`; multi-scale training "
                             "(scales) feeds other scales too: train one scale")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _build(cls: type, values: Any, where: str) -> Any:
    """Instantiate dataclass `cls` from a mapping, refusing unknown keys."""
    if not isinstance(values, dict):
        raise ValueError(f"{where}: expected a mapping, got {type(values).__name__}")
    hints = get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(
            f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    kwargs = {}
    for key, value in values.items():
        nested = [t for t in (hints[key], *get_args(hints[key])) if dataclasses.is_dataclass(t)]
        if nested and value is not None:
            value = _build(nested[0], value, f"{where}.{key}")
        else:
            value = _checked(value, hints[key], f"{where}.{key}")
        kwargs[key] = value
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise ValueError(f"{where}: {err}") from err


def _checked(value: Any, hint: Any, where: str) -> Any:
    """`value` as type `hint` wants it (lists become tuples, ints pass as floats), or a
    ValueError naming the key, the type wanted and the value found."""
    origin, args = get_origin(hint), get_args(hint)
    if hint is Any:
        return tuple(value) if isinstance(value, list) else value
    if origin in (Union, UnionType):
        for option in args:
            try:
                return _checked(value, option, where)
            except ValueError:
                continue
    elif origin is tuple and isinstance(value, (list, tuple)):
        items = args[:1] * len(value) if len(args) == 2 and args[1] is Ellipsis else args
        if len(items) == len(value):
            return tuple(_checked(v, t, f"{where}[{i}]")
                         for i, (v, t) in enumerate(zip(value, items, strict=True)))
    elif origin is dict and isinstance(value, dict):
        key_type, value_type = args
        return {_checked(k, key_type, where): _checked(v, value_type, f"{where}.{k}")
                for k, v in value.items()}
    elif hint is type(None) and value is None:
        return None
    elif hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    elif hint in (int, str, bool) and type(value) is hint:
        return value
    found = f"{value!r} ({type(value).__name__})"
    if isinstance(value, str) and "e" in value.lower() and _looks_numeric(value):
        found += "; YAML reads 1e-3 as text: write 1.0e-3"
    raise ValueError(f"{where} must be {_type_name(hint)}, not {found}")


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _type_name(hint: Any) -> str:
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, UnionType):
        return " or ".join(_type_name(a) for a in args)
    if origin is tuple:
        return "a list"
    if origin is dict:
        return "a mapping"
    return "null" if hint is type(None) else getattr(hint, "__name__", str(hint))


def parse_recipe(values: dict[str, Any], where: str = "recipe") -> Recipe:
    """A Recipe from a parsed YAML mapping."""
    return _build(Recipe, values, where)


def shipped_recipes() -> dict[str, Path]:
    """The recipes shipped with superres, by name (file stem); the minutes-long CPU
    demonstrations (`*_cpu`) last, so whatever looks for a model's recipe finds a full one."""
    folder = Path(__file__).resolve().parent.parent / "configs"
    paths = sorted(folder.glob("*.yaml"), key=lambda path: (path.stem.endswith("_cpu"), path.stem))
    return {path.stem: path for path in paths}


def apply_overrides(values: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """`values` with each `KEY.PATH=VALUE` of `overrides` set (VALUE read as YAML, so
    `data.train=[T91, /my/photos]` is a list); the result is checked like any recipe."""
    values = copy.deepcopy(values)
    for override in overrides:
        path, sep, text = override.partition("=")
        keys = path.strip().split(".")
        if not sep or not all(keys):
            raise ValueError(f"--set {override!r}: write KEY=VALUE, e.g. data.patch=48")
        target = values
        for key in keys[:-1]:
            if not isinstance(target.get(key), dict):
                target[key] = {}
            target = target[key]
        try:
            target[keys[-1]] = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ValueError(f"--set {override!r}: not valid YAML: "
                             f"{' '.join(str(err).split())}") from err
    return values


def load_recipe(path_or_name: str | Path, overrides: Sequence[str] = ()) -> Recipe:
    """Read a recipe from a YAML file, or a shipped recipe by name (e.g. `fsrcnn_x3`), with
    `--set`-style `overrides` applied (see `apply_overrides`)."""
    path = Path(path_or_name)
    if not path.is_file():
        shipped = shipped_recipes()
        if str(path_or_name) not in shipped:
            raise FileNotFoundError(
                f"no recipe file {path_or_name}; shipped recipes: {', '.join(shipped)}"
            )
        path = shipped[str(path_or_name)]
    try:
        with open(path, encoding="utf-8") as handle:
            values = yaml.safe_load(handle)
    except yaml.YAMLError as err:
        raise ValueError(f"{path.name}: not valid YAML: {' '.join(str(err).split())}") from err
    return parse_recipe(apply_overrides(values, overrides), where=path.name)
