"""Unpaired training (docs/unsupervised.md): several networks with their optimisers, updated
in turn on HR and LR images that were never paired, and an exact resume of all of them.

A recipe with an `unpaired` section trains here; its `model` is the SR network, validated and
saved as any run's (`latest.safetensors`, `best.safetensors`), so `superres eval -m MODEL -w`
runs it. The methods:

- `h2l`, Bulat et al.'s first step: the High-to-Low generator G (HR + noise -> LR) against a
  discriminator of real LR, plus a pixel loss to the bicubic LR of the HR patch. It writes
  `degrader.safetensors` (G); it has no SR network to validate.
- `l2h`, the second step: the SR network on (G(HR, noise), HR) pairs from that frozen G,
  with a pixel loss and a discriminator of HR.
- `cincgan`, Yuan et al.: the inner cycle (G1: real LR -> clean LR judged by D1 against the
  bicubic LR of HR images, G2 back; cycle, identity, TV) for `inner_steps`, during which the
  SR network pre-trains on bicubic pairs (the paper starts from a pre-trained EDSR); then
  the joint stage adds the outer cycle (SR on G1's output judged by D2 against HR, the
  down-sampling G3 back to the real LR; cycle, identity, TV) and trains everything.

Each step updates the discriminators first on the current outputs (detached), then all the
generators of the stage with one Adam (per-parameter, so the same as one Adam each).
"""

from __future__ import annotations

import functools
import math
import operator
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
import yaml
from torch import nn
from tqdm import tqdm

from superres.models import ModelSpec, get_model
from superres.models.unpaired import (
    CinCGANNet,
    CycleGenerator,
    HighToLow,
    PatchDiscriminator,
    ResidualDiscriminator,
)
from superres.train.adversarial import Adversary, Critic
from superres.train.checkpoint import load_checkpoint, save_checkpoint
from superres.train.distributed import pick_device
from superres.train.losses import (
    FrequencySplit,
    TVLoss,
    adversarial_loss,
    cycle_loss,
    identity_loss,
    pixel_loss,
)
from superres.train.objective import BicubicDownsampler, ConvDownsampler
from superres.train.optim import learning_rate
from superres.train.patches import PatchSampler, load_images
from superres.train.recipe import Recipe, Unpaired
from superres.train.trainer import (
    RunResult,
    _append_log,
    _check_same_recipe,
    _metadata,
    _truncate_log,
    _validate,
    init_path,
)
from superres.train.unpaired import UnpairedSampler, load_domain
from superres.weights import load_weights, save_weights


class Judge(Adversary):
    """An `Adversary` (D's update, G's adversarial loss, checkpoint state) over a given
    discriminator, where the GAN stage builds one by name: these methods judge LR patches
    and HR patches with networks of their papers."""

    def __init__(self, discriminator: nn.Module, gan_loss: str, lr: float,
                 betas: Sequence[float], base_lr: float) -> None:
        self.lr, self.base_lr = lr, base_lr
        self.last_d_loss = math.nan
        self.discriminator = discriminator
        self.optimizer = torch.optim.Adam(discriminator.parameters(), lr=lr, betas=tuple(betas))
        self.gan = adversarial_loss(gan_loss)
        self.critic = Critic(discriminator, self.gan)


class Method(ABC):
    """One unpaired method: its networks, the generators' optimiser, its judges, and one step
    of alternating updates. `sr` is the network a run validates and saves (None for h2l)."""

    gan_loss: ClassVar[str]
    weights: ClassVar[dict[str, float]]  # the paper's loss weights, by term

    def __init__(self, recipe: Recipe, model: nn.Module, channels: int) -> None:
        settings = recipe.unpaired
        assert settings is not None
        unknown = sorted(set(settings.weights) - set(self.weights))
        if unknown:
            raise ValueError(f"unpaired.weights: unknown term(s) {', '.join(unknown)} for "
                             f"{settings.method}; known: {', '.join(self.weights)}")
        self.recipe, self.settings, self.channels = recipe, settings, channels
        self.weight = {**self.weights, **settings.weights}
        self.scale, self.hr_patch = recipe.scale, recipe.data.patch * recipe.scale
        self.sr: nn.Module | None = model
        self.networks: dict[str, nn.Module] = {}
        self.judges: dict[str, Judge] = {}

    def _finish(self, generators: Sequence[nn.Module], judges: dict[str, nn.Module]) -> None:
        """The generators' Adam (the recipe's rate and betas) and one judge per
        discriminator (D's rate and betas from `unpaired`)."""
        optimizer = self.recipe.optimizer
        params = [p for net in generators for p in net.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(params, lr=optimizer.lr, betas=optimizer.betas)
        gan = self.settings.gan_loss or self.gan_loss
        self.judges = {name: Judge(d, gan, self.settings.d_lr, self.settings.d_betas,
                                   optimizer.lr) for name, d in judges.items()}

    def to(self, device: torch.device) -> Method:
        for net in (*self.networks.values(), *(j.discriminator for j in self.judges.values())):
            net.to(device)
        return self

    @property
    def log_fields(self) -> list[str]:
        return [f"loss_{term}" for term in self.weight] + [f"d_loss_{n}" for n in self.judges]

    @abstractmethod
    def losses(self, lr: torch.Tensor, hr: torch.Tensor, step: int,
               rate: float) -> dict[str, torch.Tensor]:
        """Update the discriminators, then return the generators' unweighted loss terms."""

    def step(self, lr: torch.Tensor, hr: torch.Tensor, step: int, rate: float) -> dict[str, float]:
        """One alternating update at base rate `rate`; the terms as numbers for the log (a
        discriminator not updated yet: NaN)."""
        for group in self.optimizer.param_groups:
            group["lr"] = rate
        terms = self.losses(lr, hr, step, rate)
        total = functools.reduce(operator.add,
                                 (self.weight[name] * value for name, value in terms.items()))
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        self.optimizer.step()
        row = {f"loss_{name}": float(value.detach()) for name, value in terms.items()}
        row.update({f"d_loss_{name}": judge.last_d_loss for name, judge in self.judges.items()})
        return row

    def state_dict(self) -> dict[str, Any]:
        return {"networks": {name: net.state_dict() for name, net in self.networks.items()},
                "optimizer": self.optimizer.state_dict(),
                "judges": {name: judge.state_dict() for name, judge in self.judges.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, net in self.networks.items():
            net.load_state_dict(state["networks"][name])
        self.optimizer.load_state_dict(state["optimizer"])
        for name, judge in self.judges.items():
            judge.load_state_dict(state["judges"][name])


def high_to_low(settings: Unpaired, scale: int, hr_patch: int, channels: int) -> HighToLow:
    """The High-to-Low generator a two-step recipe describes (h2l trains it, l2h loads it)."""
    return HighToLow(scale, hr_patch, settings.noise, settings.width, settings.blocks, channels)


class HighToLowStep(Method):
    """Bulat et al.'s first step (see the module): alpha * MSE to the bicubic LR plus
    beta * hinge GAN against real LR, alpha 1 and beta 0.05 as the paper. With
    `frequency_split`, the MSE compares low bands and the discriminator sees high bands
    only (Fritsche et al.; `FrequencySplit`), so it cannot learn the LR set's colours."""

    gan_loss = "hinge"
    weights: ClassVar[dict[str, float]] = {"pixel": 1.0, "adversarial": 0.05}

    def __init__(self, recipe: Recipe, model: nn.Module, channels: int) -> None:
        super().__init__(recipe, model, channels)
        self.sr = None
        self.generator = high_to_low(self.settings, self.scale, self.hr_patch, channels)
        self.networks = {"h2l": self.generator}
        self.bicubic = BicubicDownsampler(channels, self.scale)
        self.mse = pixel_loss("mse")
        size = self.settings.frequency_split
        self.split = FrequencySplit(size) if size else None
        d_lr = ResidualDiscriminator(recipe.data.patch, self.settings.width,
                                     3 * self.settings.blocks, 0, channels)
        self._finish([self.generator], {"lr": d_lr})

    def losses(self, lr: torch.Tensor, hr: torch.Tensor, step: int,
               rate: float) -> dict[str, torch.Tensor]:
        fake = self.generator(hr, self.generator.sample_noise(hr.shape[0]))
        target = self.bicubic(hr)
        judged, real = fake, lr
        if self.split is not None:  # the pixel loss on low bands, the GAN on high bands
            fake, target = self.split.low(fake), self.split.low(target)
            judged, real = self.split.high(judged), self.split.high(real)
        judge = self.judges["lr"]
        judge.discriminator_step(judged, real, rate)
        return {"pixel": self.mse(fake, target),
                "adversarial": judge.generator_loss(judged, real)}


class LowToHighStep(Method):
    """Bulat et al.'s second step (see the module): the SR network on the frozen High-to-Low
    generator's pairs, alpha * MSE + beta * hinge GAN (the paper's alpha 1, beta 0.05)."""

    gan_loss = "hinge"
    weights: ClassVar[dict[str, float]] = {"pixel": 1.0, "adversarial": 0.05}

    def __init__(self, recipe: Recipe, model: nn.Module, channels: int) -> None:
        super().__init__(recipe, model, channels)
        self.degrader = high_to_low(self.settings, self.scale, self.hr_patch, channels)
        load_weights(self.degrader, init_path(str(self.settings.degrader)))
        self.degrader.requires_grad_(False).eval()
        self.networks = {"sr": model}
        self.mse = pixel_loss("mse")
        # The HR discriminator pools once per factor of 2, so that its blocks see LR-sized maps.
        pools = self.scale.bit_length() - 1
        d_hr = ResidualDiscriminator(self.hr_patch, self.settings.width,
                                     max(3 * self.settings.blocks, pools), pools, channels)
        self._finish([model], {"hr": d_hr})

    def to(self, device: torch.device) -> Method:
        self.degrader.to(device)
        return super().to(device)

    def losses(self, lr: torch.Tensor, hr: torch.Tensor, step: int,
               rate: float) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            made = self.degrader(hr, self.degrader.sample_noise(hr.shape[0])).clamp(0, 1)
        assert self.sr is not None
        sr = self.sr(made)
        judge = self.judges["hr"]
        judge.discriminator_step(sr, hr, rate)
        return {"pixel": self.mse(sr, hr), "adversarial": judge.generator_loss(sr, hr)}


class CycleInCycle(Method):
    """Yuan et al.'s CinCGAN (see the module), with the paper's weights: inner cycle
    GAN 1, cycle 10, identity 5, TV 0.5; outer cycle GAN 1, cycle 10, identity 5, TV 2; and
    the SR network's bicubic pre-training (L1) during the inner stage. Least-squares GAN."""

    gan_loss = "lsgan"
    weights: ClassVar[dict[str, float]] = {
        "inner_adversarial": 1.0, "inner_cycle": 10.0, "inner_identity": 5.0, "inner_tv": 0.5,
        "pretrain": 1.0, "outer_adversarial": 1.0, "outer_cycle": 10.0, "outer_identity": 5.0,
        "outer_tv": 2.0}

    def __init__(self, recipe: Recipe, model: nn.Module, channels: int) -> None:
        super().__init__(recipe, model, channels)
        if not isinstance(model, CinCGANNet):
            raise ValueError(f"cincgan trains the `cincgan` model (G1 then the SR network), "
                             f"not {recipe.model!r}")
        width, blocks = self.settings.width, self.settings.blocks
        self.g1, self.upscale = model.clean, model.sr
        self.g2 = CycleGenerator(width, blocks, channels)
        self.g3 = ConvDownsampler(channels, self.scale, width)
        self.networks = {"cincgan": model, "g2": self.g2, "g3": self.g3}
        self.bicubic = BicubicDownsampler(channels, self.scale)
        self.tv = TVLoss()
        strided = 2  # D1 on LR patches; D2 sees HR with one more stride-2 conv per factor 2
        self._finish([model, self.g2, self.g3], {
            "d1": PatchDiscriminator(width, strided, channels),
            "d2": PatchDiscriminator(width, strided + self.scale.bit_length() - 1, channels)})

    def losses(self, lr: torch.Tensor, hr: torch.Tensor, step: int,
               rate: float) -> dict[str, torch.Tensor]:
        clean_lr = self.bicubic(hr).clamp(0, 1)  # the clean domain: bicubic LR of HR images
        cleaned = self.g1(lr)
        d1 = self.judges["d1"]
        d1.discriminator_step(cleaned, clean_lr, rate)
        terms = {"inner_adversarial": d1.generator_loss(cleaned, clean_lr),
                 "inner_cycle": cycle_loss(self.g2(cleaned), lr),
                 "inner_identity": identity_loss(self.g1, clean_lr),
                 "inner_tv": self.tv(cleaned)}
        if step < self.settings.inner_steps:
            terms["pretrain"] = identity_loss(self.upscale, clean_lr, hr)
            return terms
        sr = self.upscale(cleaned)
        d2 = self.judges["d2"]
        d2.discriminator_step(sr, hr, rate)
        terms.update({"outer_adversarial": d2.generator_loss(sr, hr),
                      "outer_cycle": cycle_loss(self.g3(sr), lr),
                      "outer_identity": identity_loss(self.upscale, clean_lr, hr),
                      "outer_tv": self.tv(sr)})
        return terms



METHODS: dict[str, type[Method]] = {"h2l": HighToLowStep, "l2h": LowToHighStep,
                                    "cincgan": CycleInCycle}


def train_unpaired(recipe: Recipe, out: Path, *, resume: bool = False,
                   max_steps: int | None = None, progress: bool = True,
                   threads: int | None = None, device: str | None = None) -> RunResult:
    """Train a recipe with an `unpaired` section into folder `out` (one process); stops
    after `max_steps` total steps if given; `resume` continues a killed run exactly."""
    if threads:
        torch.set_num_threads(threads)
    if recipe.unpaired is None:
        raise ValueError("this recipe has no unpaired section: train it with `superres train`")
    spec = get_model(recipe.model)
    spec.check_scale(recipe.scale)
    return _UnpairedRun(recipe, spec, out, pick_device(device), resume, progress).run(max_steps)


class _UnpairedRun:
    """One unpaired run: the method, its data, and the loop with checkpoints and the log."""

    def __init__(self, recipe: Recipe, spec: ModelSpec, out: Path, device: torch.device,
                 resume: bool, progress: bool) -> None:
        self.recipe, self.spec, self.out, self.device = recipe, spec, out, device
        self.progress = progress
        self.last = out / "last.pt"
        if self.last.exists() and not resume:
            raise FileExistsError(f"{out} already holds a run; use --resume to continue it")
        if resume and not self.last.exists():
            raise FileNotFoundError(f"nothing to resume: {self.last} does not exist")
        settings = recipe.unpaired
        assert settings is not None
        out.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(recipe.seed)
        color = "y" if spec.color == "y" else "rgb"
        model = spec.build(recipe.scale)
        if recipe.init and not resume:
            load_weights(model, init_path(recipe.init))
        self.method = METHODS[settings.method](recipe, model, 1 if color == "y" else 3)
        self.method.to(device)
        data = recipe.data
        hr = data.train
        if settings.method == "l2h":  # HR alone: the frozen generator makes the LR
            self.sampler: PatchSampler | UnpairedSampler = PatchSampler(
                load_images(hr, (recipe.scale,), color, progress=progress), recipe.scale,
                data.patch, data.batch, data.augment, recipe.seed)
        else:
            self.sampler = UnpairedSampler(
                load_domain(settings.lr, color, progress), load_domain(hr, color, progress),
                recipe.scale, data.patch, data.batch, data.augment, recipe.seed)

    def run(self, max_steps: int | None) -> RunResult:
        recipe, out, method = self.recipe, self.out, self.method
        step, best_psnr, best_step, elapsed = 0, -math.inf, -1, 0.0
        fields = ["step", "lr", "val_psnr", "val_ssim", "seconds", *method.log_fields]
        # Built before a resume restores torch's generator, whose draws (the noise) follow.
        eval_models = {recipe.scale: self.spec.build(recipe.scale).to(self.device).eval()}
        if self.last.exists():
            _check_same_recipe(recipe, out / "recipe.yaml")
            state = load_checkpoint(self.last)
            method.load_state_dict(state["method"])
            self.sampler.load_state_dict(state["sampler"])
            torch.set_rng_state(state["torch_rng"])
            step, best_psnr, best_step = state["step"], state["best_psnr"], state["best_step"]
            elapsed = state["seconds"]
            _truncate_log(out / "log.csv", step, fields)
        else:
            (out / "recipe.yaml").write_text(yaml.safe_dump(recipe.to_dict(), sort_keys=False))
            _truncate_log(out / "log.csv", 0, fields)
        total = min(recipe.schedule.steps, max_steps) if max_steps else recipe.schedule.steps
        started = time.perf_counter() - elapsed
        sums: dict[str, list[float]] = {}  # each logged value since the last row
        bar = tqdm(total=total, initial=step, desc=f"{recipe.unpaired.method} x{recipe.scale}"
                   if recipe.unpaired else "", unit="step", disable=not self.progress)
        for net in method.networks.values():
            net.train()
        while step < total:
            rate = learning_rate(recipe, step)
            lr_batch, hr_batch = (x.to(self.device) for x in self.sampler.next_batch())
            terms = method.step(lr_batch, hr_batch, step, rate)
            step += 1
            for key, value in terms.items():  # a term of the other stage is left out
                if not math.isnan(value):
                    sums.setdefault(key, []).append(value)
            bar.update(1)
            validate = step % recipe.validate_every == 0 or step == total
            if not (validate or step % recipe.checkpoint_every == 0):
                continue
            row: dict[str, Any] = {"step": step, "lr": rate,
                                   "seconds": round(time.perf_counter() - started, 1),
                                   **{key: sum(v) / len(v) for key, v in sums.items()}}
            sums = {}
            if method.sr is None:  # h2l: the generator is what the run makes
                save_weights(method.networks["h2l"], out / "degrader.safetensors",
                             {"step": str(step), "noise": str(recipe.unpaired.noise)})
            elif validate:
                psnr = _validate(self.spec, recipe, eval_models, method.sr.state_dict(), row,
                                 self.device)
                meta = _metadata(recipe, step, psnr)
                save_weights(eval_models[recipe.scale], out / "latest.safetensors", meta)
                if psnr > best_psnr:
                    best_psnr, best_step = psnr, step
                    save_weights(eval_models[recipe.scale], out / "best.safetensors", meta)
            _append_log(out / "log.csv", row, fields)
            save_checkpoint({"method": method.state_dict(), "sampler": self.sampler.state_dict(),
                             "torch_rng": torch.get_rng_state(), "step": step,
                             "best_psnr": best_psnr, "best_step": best_step,
                             "seconds": time.perf_counter() - started}, self.last)
        bar.close()
        return RunResult(out=out, steps=step, best_psnr=best_psnr, best_step=best_step)
