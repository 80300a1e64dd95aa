"""The training loop: recipe in, checkpoints, a CSV log and the best weights out.

State that decides the next step (weights, optimiser moments, the patch sampler's random
state, the EMA, the best score) is saved every `checkpoint_every` steps, so `--resume`
after a kill continues the same run: the same batches, the same loss curve.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn
from tqdm import tqdm

from superres.evaluation import evaluate_dataset
from superres.inference.upscaler import Upscaler
from superres.models import MODELS, ModelSpec, get_model
from superres.nn.frameworks import LaplacianPyramid, PreUpsampling, pyramid_levels
from superres.nn.supervision import LossFn, MultiSupervised
from superres.train import distributed
from superres.train.checkpoint import load_checkpoint, save_checkpoint
from superres.train.clips import ClipSampler, load_stills
from superres.train.faces import FaceSampler, load_faces
from superres.train.objective import Objective, parse_losses
from superres.train.optim import EMA, build_optimizer, learning_rate
from superres.train.patches import PatchSampler, load_images
from superres.train.recipe import Recipe, load_recipe
from superres.weights import checked_path, find_weights, load_weights, save_weights

log = logging.getLogger(__name__)

LOG_FIELDS = ["step", "loss", "lr", "val_psnr", "val_ssim", "seconds", "d_loss"]


@dataclass
class RunResult:
    """Where a finished run left its files, and its best validation score."""

    out: Path
    steps: int
    best_psnr: float
    best_step: int


def train(
    recipe: Recipe,
    out: Path,
    *,
    resume: bool = False,
    max_steps: int | None = None,
    progress: bool = True,
    threads: int | None = None,
    device: str | None = None,
) -> RunResult | None:
    """Train `recipe` into folder `out`; stops after `max_steps` total steps if given.

    `device`: cpu, cuda or mps (default CUDA when present). Under torchrun every process
    calls this: each trains on its shard of every global batch, and rank 0 alone validates,
    logs and writes files; it returns the result, the other ranks None."""
    if threads:
        torch.set_num_threads(threads)
    spec = _checked_spec(recipe)
    context = distributed.start(device)
    try:
        return _Run(recipe, spec, out, context, resume, progress).run(max_steps)
    finally:
        distributed.stop(context)


def _checked_spec(recipe: Recipe) -> ModelSpec:
    """The recipe's model, refused early where the recipe asks what it cannot do."""
    spec = get_model(recipe.model)
    for scale in recipe.scales or (recipe.scale,):
        spec.check_scale(scale)
    if recipe.scales:
        _check_scale_free(spec)
    if recipe.loss_border:
        with torch.device("meta"):
            own_loss = isinstance(spec.build(recipe.scale), MultiSupervised)
        if own_loss:
            raise ValueError(f"loss_border: {spec.name} scores its outputs in its own "
                             "training loss; leave loss_border at 0")
    return spec


class _SupervisedLoss(nn.Module):
    """A multi-supervised model's own loss as a forward pass, so that a distributed wrapper
    sees (and synchronises) the pass that computes it."""

    def __init__(self, model: MultiSupervised, loss_fn: LossFn) -> None:
        super().__init__()
        self.model, self.loss_fn = model, loss_fn

    def forward(self, lr: torch.Tensor, hr: torch.Tensor, step: int,
                *targets: torch.Tensor) -> torch.Tensor:
        return self.model.training_loss(lr, hr, self.loss_fn, step, *targets)


class _Run:
    """One training run: everything a step needs, and everything a checkpoint restores."""

    def __init__(self, recipe: Recipe, spec: ModelSpec, out: Path,
                 context: distributed.Context, resume: bool, progress: bool) -> None:
        self.recipe, self.spec, self.out, self.context = recipe, spec, out, context
        self.main, self.device = context.main, context.device
        self.progress = progress and context.main
        start = init_path(recipe.init) if recipe.init and not resume else None
        self.last = out / "last.pt"
        if self.last.exists() and not resume:
            raise FileExistsError(f"{out} already holds a run; use --resume to continue it")
        if resume and not self.last.exists():
            raise FileNotFoundError(f"nothing to resume: {self.last} does not exist")
        if recipe.precision == "float16" and (recipe.gan or any(
                term.get("type") == "adversarial" for term in recipe.losses)):
            raise ValueError("precision float16 scales G's gradients only; train a GAN with "
                             "bfloat16 or float32")
        if self.main:
            out.mkdir(parents=True, exist_ok=True)

        torch.manual_seed(recipe.seed)
        model = spec.build(recipe.scale)
        if recipe.model_loss:
            if not isinstance(model, MultiSupervised):
                raise ValueError(f"model_loss: {spec.name} has no loss terms of its own; "
                                 "leave model_loss empty")
            model.set_loss_weights(recipe.model_loss)
        if start:  # a resumed run's weights come from its checkpoint
            skipped = load_weights(model, start, strict=False)
            if skipped:
                log.info("init: kept the fresh values of %s", ", ".join(skipped))
        if recipe.scales:  # the sampler interpolates each sample by its own scale
            model.input_upsampled = True  # a PreUpsampling model (checked above)
        # Channels-last activations train CPU convolutions up to ~2x faster (FSRCNN, SRCNN);
        # the function and the state dict's values are the same.
        self.model = model.to(self.device, memory_format=torch.channels_last)
        self.optimizer = build_optimizer(recipe, model)
        self.ema = EMA(model, recipe.ema) if recipe.ema else None
        color = "y" if spec.color == "y" else "rgb"
        data = recipe.data
        # The terms first: a missing VGG file stops the run before the images are read.
        # `loss` alone is one pixel term and the `gan` stage three (`Adversarial.terms`), so
        # the recipes written before `losses` train as they did.
        terms = recipe.losses or (recipe.gan.terms(recipe.loss) if recipe.gan else
                                  ({"type": "pixel", "criterion": recipe.loss},))
        self.objective = Objective(
            parse_losses(terms), scale=recipe.scale, hr_patch=data.patch * recipe.scale,
            channels=1 if color == "y" else 3, base_lr=recipe.optimizer.lr,
            log_terms=bool(recipe.losses)).to(self.device)
        # A curriculum's phases each draw from a sampler of their own (scale, degradation);
        # the last phase is the recipe's own task, with the stream a plain recipe would draw.
        self.phases = recipe.phases()
        climbs = any(phase.scale != recipe.scale for phase in self.phases)
        if climbs and not isinstance(model, LaplacianPyramid):
            raise ValueError(f"a scale curriculum climbs a pyramid's x2 levels; {spec.name} "
                             "is not progressive (LapSRN, MS-LapSRN are)")
        if climbs and self.objective.adversary is not None:
            raise ValueError("a scale curriculum changes the HR patch size, which the "
                             "discriminator's input is fixed to: train the GAN stage at one scale")
        scales = sorted({*(recipe.scales or (recipe.scale,)),
                         *(phase.scale for phase in self.phases)})
        self.samplers: list[PatchSampler | FaceSampler | ClipSampler]
        if spec.frames > 1:  # a video model: clips synthesised from the stills
            self.samplers = [_clip_sampler(recipe, spec, context, self.progress)]
        elif data.landmarks:  # whole faces and their heatmaps (checked against the model below)
            self.samplers = [FaceSampler(load_faces(data.train, recipe.scale), data.batch,
                                         data.augment, recipe.seed, zoom=data.face_zoom,
                                         shift=data.face_shift,
                                         shard=(context.rank, context.world))]
        else:
            images = load_images(data.train, scales, color, progress=self.progress,
                                 degradation=[phase.degradation for phase in self.phases])
            self.samplers = [PatchSampler(
                images, phase.scale, data.patch, data.batch, data.augment,
                recipe.seed + len(self.phases) - 1 - i, scales=recipe.scales,
                factors=data.scale_augment, degradation=phase.degradation,
                shard=(context.rank, context.world)) for i, phase in enumerate(self.phases)]
        needs = model.targets if isinstance(model, MultiSupervised) else ()
        if any(target not in self.samplers[-1].targets for target in needs):
            raise ValueError(f"{spec.name} learns from landmark heatmaps too: set "
                             "data.landmarks: true to train on faces with their landmarks")
        self.objective.join(self.optimizer)  # a learned D_down trains with the generator
        # The passes that make gradients, each behind PyTorch's DistributedDataParallel in a
        # distributed run: G (or a multi-output model's own loss), D, a learned D_down.
        wrap = self._distributed if context.distributed else (lambda module: module)
        if isinstance(model, MultiSupervised):  # DRCN, LapSRN apply a lone pixel term
            self.supervised: nn.Module | None = wrap(_SupervisedLoss(
                model, self.objective.supervised_loss_fn(spec.name)))
            self.net: nn.Module = model
        else:
            self.supervised, self.net = None, wrap(model)
        if recipe.compile:
            self.net = torch.compile(self.net)
        if context.distributed:
            self.objective.distribute(wrap)
        amp = recipe.precision != "float32"
        self.autocast_dtype = getattr(torch, recipe.precision) if amp else None
        self.scaler = torch.amp.GradScaler(self.device.type,
                                           enabled=recipe.precision == "float16")

    def _phase(self, step: int) -> int:
        """The index of the curriculum phase that `step` belongs to."""
        return next(i for i, phase in enumerate(self.phases) if step < phase.until
                    or i == len(self.phases) - 1)

    def _distributed(self, module: nn.Module) -> nn.Module:
        # A channels-last weight with one input channel has strides that DDP's bucket view
        # reads as a different layout of the same gradient; it warns, and nothing is wrong.
        warnings.filterwarnings("ignore", message="Grad strides do not match bucket view")
        ids = [self.device.index] if self.device.type == "cuda" else None
        # Levels above a scale curriculum's current one get no gradient.
        unused = any(phase.scale != self.recipe.scale for phase in self.recipe.phases())
        return nn.parallel.DistributedDataParallel(module, device_ids=ids,
                                                   find_unused_parameters=unused)

    def run(self, max_steps: int | None) -> RunResult | None:
        recipe, out = self.recipe, self.out
        step, best_psnr, best_step, elapsed = 0, -math.inf, -1, 0.0
        fields = _log_fields(recipe) + self.objective.log_fields
        if self.last.exists():  # a resume (checked in __init__)
            _check_same_recipe(recipe, out / "recipe.yaml")
            step, best_psnr, best_step, elapsed = self._restore(load_checkpoint(self.last))
            if self.main:
                _truncate_log(out / "log.csv", step, fields)
        elif self.main:
            (out / "recipe.yaml").write_text(yaml.safe_dump(recipe.to_dict(), sort_keys=False))
            _truncate_log(out / "log.csv", 0, fields)

        total = min(recipe.schedule.steps, max_steps) if max_steps else recipe.schedule.steps
        # Validation at `scale` picks the best weights; a multi-scale run also logs the others.
        eval_models = {scale: self.spec.build(scale).to(self.device).eval()
                       for scale in dict.fromkeys((recipe.scale, *recipe.scales))}
        # Training time carries over a resume, so the log tells what a model really cost.
        started = time.perf_counter() - elapsed
        running, count = 0.0, 0
        bar = tqdm(total=total, initial=step, desc=f"{self.spec.name} x{recipe.scale}",
                   unit="step", disable=not self.progress, dynamic_ncols=True)
        self.model.train()
        while step < total:
            lr_base = learning_rate(recipe, step)
            loss = self._step(step, lr_base)
            step += 1
            running, count = running + loss, count + 1
            bar.update(1)
            validate = step % recipe.validate_every == 0 or step == total
            if not self.main or not (validate or step % recipe.checkpoint_every == 0):
                continue
            row = {"step": step, "loss": running / count, "lr": lr_base,
                   "seconds": round(time.perf_counter() - started, 1),
                   **self.objective.log_row()}  # d_loss, and per-term means of `losses`
            running, count = 0.0, 0
            if validate:
                weights = self.ema.shadow if self.ema else self.model.state_dict()
                psnr = _validate(self.spec, recipe, eval_models, weights, row, self.device)
                bar.set_postfix(loss=f"{row['loss']:.2e}", psnr=f"{psnr:.3f}")
                meta = _metadata(recipe, step, psnr)
                eval_model = eval_models[recipe.scale]
                save_weights(eval_model, out / "latest.safetensors", meta)  # GAN runs ship these
                if psnr > best_psnr:
                    best_psnr, best_step = psnr, step
                    save_weights(eval_model, out / "best.safetensors", meta)
            _append_log(out / "log.csv", row, fields)
            save_checkpoint(self._state(step, best_psnr, best_step,
                                        time.perf_counter() - started), self.last)
        bar.close()
        distributed.barrier(self.context)  # the files are written before any rank returns
        if not self.main:
            return None
        return RunResult(out=out, steps=step, best_psnr=best_psnr, best_step=best_step)

    def _step(self, step: int, lr_base: float) -> float:
        """One optimiser step at base learning rate `lr_base`; the loss, as a number."""
        recipe, model, optimizer = self.recipe, self.model, self.optimizer
        for group in optimizer.param_groups:
            group["lr"] = lr_base * group["multiplier"]
        phase = self._phase(step)
        if isinstance(self.model, LaplacianPyramid):  # a scale curriculum's current level
            self.model.levels_used = pyramid_levels(self.phases[phase].scale)
        sampler = self.samplers[phase]
        lr_batch, hr_batch, *targets = (x.to(self.device) for x in sampler.next_batch())
        lr_batch = lr_batch.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, self.autocast_dtype,
                            enabled=self.autocast_dtype is not None):
            if self.supervised is not None:  # multi-output models: DRCN, LapSRN, FSRNet
                loss = self.supervised(lr_batch, hr_batch, step, *targets)
            else:  # the weighted terms; an adversarial term updates D first
                sr, hr = _centre(recipe.loss_border, self.net(lr_batch), hr_batch)
                loss = self.objective.loss(sr, hr, lr_batch, lr_base)
        if recipe.loss_reduction == "sum":  # over the scored pixels of one image
            loss = loss * _centre(recipe.loss_border, hr_batch[0])[0].numel()
        optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()  # the gradients are averaged over the ranks here
        self.scaler.unscale_(optimizer)
        if recipe.clip_grad and recipe.clip_mode == "adjustable":  # VDSR: theta / lr
            nn.utils.clip_grad_value_(model.parameters(), recipe.clip_grad / lr_base)
        elif recipe.clip_grad:
            nn.utils.clip_grad_norm_(model.parameters(), recipe.clip_grad)
        self.scaler.step(optimizer)
        self.scaler.update()
        if self.ema:
            self.ema.update(model)
        return distributed.mean(self.context, loss.detach()).item()  # the global batch's

    def _state(self, step: int, best_psnr: float, best_step: int,
               seconds: float) -> dict[str, Any]:
        """What a resume needs. Every rank draws from the same sampler stream and seeds, so
        rank 0's state is every rank's."""
        return {
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "sampler": self.samplers[-1].state_dict(), "torch_rng": torch.get_rng_state(),
            "curriculum": [sampler.state_dict() for sampler in self.samplers[:-1]],
            "ema": self.ema.shadow if self.ema else None, "step": step,
            **self.objective.state_dict(),  # D and its optimiser, a learned D_down
            "scaler": self.scaler.state_dict(), "seconds": seconds,
            "best_psnr": best_psnr, "best_step": best_step,
        }

    def _restore(self, state: dict[str, Any]) -> tuple[int, float, int, float]:
        """Load a checkpoint (written on any device) into this run; returns step, best PSNR,
        its step, and the seconds trained."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.samplers[-1].load_state_dict(state["sampler"])
        for sampler, sampler_state in zip(self.samplers, state.get("curriculum", []),
                                          strict=False):
            sampler.load_state_dict(sampler_state)
        torch.set_rng_state(state["torch_rng"])
        if self.ema:
            self.ema.shadow = {k: v.to(self.device) for k, v in state["ema"].items()}
        self.objective.load_state_dict(state)
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        return (state["step"], state["best_psnr"], state["best_step"],
                state.get("seconds", 0.0))


def _clip_sampler(recipe: Recipe, spec: ModelSpec, context: distributed.Context,
                  progress: bool) -> ClipSampler:
    """The sampler of a video model's synthetic clips; refused where the recipe asks what
    clips do not do (a curriculum, several scales, sharding over ranks)."""
    if len(recipe.phases()) > 1 or recipe.scales or recipe.data.scale_augment:
        raise ValueError(f"{spec.name} trains on synthetic clips at one scale: drop "
                         "curriculum, scales and data.scale_augment")
    if context.world > 1:
        raise ValueError(f"{spec.name} trains on synthetic clips in one process; run it "
                         "without torchrun")
    data = recipe.data
    return ClipSampler(load_stills(data.train, progress), recipe.scale, data.patch, data.batch,
                       spec.frames, recipe.seed, augment=data.augment,
                       degradation=recipe.degradation)


def _centre(border: int, *images: torch.Tensor) -> list[torch.Tensor]:
    """Each image without `border` pixels at every edge."""
    if not border:
        return list(images)
    return [image[..., border:-border, border:-border] for image in images]


def _validate(spec: ModelSpec, recipe: Recipe, eval_models: dict[int, nn.Module],
              weights: dict[str, torch.Tensor], row: dict, device: torch.device) -> float:
    """Score `weights` at every scale of `eval_models` into the log `row`; return the PSNR
    at `scale`, which picks the best weights."""
    for scale, eval_model in eval_models.items():
        eval_model.load_state_dict(weights)
        score = evaluate_dataset(Upscaler(spec, scale, eval_model, device),
                                 recipe.validate_on, progress=False,
                                 degradation=recipe.degradation, temporal=False)
        suffix = "" if scale == recipe.scale else f"_x{scale}"
        row.update({f"val_psnr{suffix}": round(score.psnr, 4),
                    f"val_ssim{suffix}": round(score.ssim, 5)})
        if scale == recipe.scale:
            psnr = score.psnr
    return psnr


def _scale_free(spec: ModelSpec) -> bool:
    """Whether the model is a network behind a parameter-free upsampler (pre-upsampling)."""
    with torch.device("meta"):
        return isinstance(spec.build(spec.scales[0]), PreUpsampling)


def _check_scale_free(spec: ModelSpec) -> None:
    """Multi-scale training shares one network between scales: only pre-upsampling models
    have one that does not depend on the scale."""
    if not _scale_free(spec):
        names = [name for name, other in MODELS.items()
                 if other.framework == "pre-upsampling" and _scale_free(other)]
        raise ValueError(
            f"multi-scale training (scales) needs a network that is the same at every scale, "
            f"i.e. a pre-upsampling model ({', '.join(names)}); {spec.name} is "
            f"{spec.framework}: train one scale at a time"
        )


def _check_same_recipe(recipe: Recipe, recorded: Path) -> None:
    """A resumed run must continue the recipe it started with; to change it on purpose,
    edit RUN/recipe.yaml and resume from that file."""
    before = load_recipe(recorded).to_dict()
    now = recipe.to_dict()
    changed = sorted(key for key in now if now[key] != before.get(key))
    if changed:
        raise ValueError(
            f"--resume with a recipe that differs from {recorded} in {', '.join(changed)}; "
            f"to change the run on purpose, edit {recorded} and resume from it"
        )


def init_path(init: str) -> Path:
    """`zoo:MODEL_xS` names shipped weights; anything else is a file path (relative ones from
    the current folder, as the second-stage recipes' `checkpoints/RUN/best.safetensors`)."""
    if not init.startswith("zoo:"):
        path = Path(init)
        if not path.is_file():
            raise FileNotFoundError(
                f"init {init!r}: no such file in {Path.cwd()}; a relative path is read from "
                f"the current folder (a checkpoints/RUN path: train RUN first, from the "
                f"repository root)"
            )
        return path
    model, _, scale = init[4:].rpartition("_x")
    shipped = find_weights(model, int(scale)) if scale.isdigit() else None
    if shipped is None:
        raise FileNotFoundError(f"init {init!r}: no such shipped weights")
    return checked_path(shipped)


def _metadata(recipe: Recipe, step: int, psnr: float) -> dict[str, str]:
    model = recipe.model if isinstance(recipe.model, str) else json.dumps(recipe.model)
    meta = {"model": model, "scale": str(recipe.scale), "step": str(step),
            f"{recipe.validate_on}_psnr": f"{psnr:.4f}"}
    if recipe.scales:
        meta["scales"] = ",".join(str(scale) for scale in recipe.scales)
    return meta


def _log_fields(recipe: Recipe) -> list[str]:
    """LOG_FIELDS, then the validation columns of a multi-scale run's other scales."""
    others = [scale for scale in recipe.scales if scale != recipe.scale]
    return LOG_FIELDS + [f"val_{m}_x{scale}" for scale in others for m in ("psnr", "ssim")]


def _truncate_log(path: Path, step: int, fields: list[str]) -> None:
    """Keep the log rows up to `step` (the checkpoint a resumed run starts from)."""
    rows = []
    if path.exists() and step > 0:
        with open(path, newline="") as f:
            rows = [r for r in csv.DictReader(f) if int(r["step"]) <= step]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fields)
        writer.writeheader()
        writer.writerows(rows)


def _append_log(path: Path, row: dict, fields: list[str]) -> None:
    with open(path, "a", newline="") as f:
        csv.DictWriter(f, fields).writerow(row)
