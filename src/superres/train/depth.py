"""Training colour-guided depth SR by leave-one-scene-out: one run folder, one fold per scene.

A depth set has a handful of scenes (Middlebury 2005: six), too few for a test set of its
own, so a guided model is trained once per scene on the other scenes' patches and scored on
the scene it never saw; a last model (`all/`) learns from every scene, for users' own maps.
Each fold lives in `OUT/<scene>/` with its checkpoint (`last.pt`, written atomically), its
`log.csv` and, when done, `weights.safetensors`; `--resume` finishes the fold in progress
exactly (same patches, same loss curve) and goes on with the next.

The recipe is an ordinary `Recipe`: `model` (a guided model), `scales` (one network serves
them all: it reads the scale from the guide's size; each batch is at one of them),
`data.train` (depth sets), `data.patch` and `data.batch` (HR patch = patch x scale at every
scale), `loss`, `optimizer`, `schedule`
(steps per fold), `seed`, `validate_every` (the held-out scene's RMSE is logged, never used
to pick weights: a fold ships its last weights) and `checkpoint_every`, with `validate_on:
leave-one-out`. LR maps are the set's released ones, or made as the release made them
(`superres.data.depth.downsample_depth`). Options the image trainer has beyond these are refused.
"""

from __future__ import annotations

import csv
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch.nn import functional as F
from tqdm import tqdm

from superres.data.depth import DepthScene, depth_scenes, leave_one_out
from superres.metrics.depth import rmse_255
from superres.models import ModelSpec, get_model
from superres.train.checkpoint import load_checkpoint, save_checkpoint
from superres.train.optim import build_optimizer, learning_rate
from superres.train.recipe import Recipe, load_recipe
from superres.train.trainer import _append_log, _truncate_log
from superres.weights import add_shipped_folds, save_weights

LEAVE_ONE_OUT = "leave-one-out"
ALL_SCENES = "all"  # the fold trained on every scene, shipped for users' own depth maps
WEIGHTS = "weights.safetensors"
# Recipe fields the depth trainer does not implement: they must keep their defaults.
_UNSUPPORTED = ("loss_reduction", "loss_border", "clip_grad", "ema", "init", "trainable",
                "precision", "compile", "gan", "degradation", "losses", "curriculum")


@dataclass
class DepthRunResult:
    """Where the folds of a leave-one-out run are, and each fold's last held-out RMSE."""

    out: Path
    steps: int  # per fold
    rmse: dict[str, dict[int, float]]  # held-out scene -> scale -> RMSE (0-255)

    def summary(self) -> str:
        """One line: the mean over the folds of each scale's held-out RMSE."""
        scales = sorted({s for by_scale in self.rmse.values() for s in by_scale})
        means = ", ".join(f"x{s} {np.mean([r[s] for r in self.rmse.values()]):.3f}"
                          for s in scales)
        return (f"{len(self.rmse)} folds of {self.steps} steps in {self.out}; mean held-out "
                f"RMSE {means}; weights in each fold's {WEIGHTS}")


def check_depth_recipe(recipe: Recipe) -> ModelSpec:
    """The recipe's guided model, after refusing what the depth trainer cannot do."""
    spec = get_model(recipe.model)
    if not spec.guided:
        raise ValueError(f"{spec.name} takes no guide; the depth trainer trains guided models")
    for scale in recipe.scales or (recipe.scale,):
        spec.check_scale(scale)
    if recipe.validate_on != LEAVE_ONE_OUT:
        raise ValueError(f"a depth recipe scores each fold on the scene it leaves out: set "
                         f"validate_on to {LEAVE_ONE_OUT!r}, not {recipe.validate_on!r}")
    default = Recipe(model=recipe.model, scale=recipe.scale)
    changed = [name for name in _UNSUPPORTED
               if getattr(recipe, name) != getattr(default, name)]
    changed += ["data.scale_augment"] if recipe.data.scale_augment else []
    if changed:
        raise ValueError(f"the depth trainer does not implement {', '.join(changed)}; leave "
                         "them at their defaults")
    return spec


def train_depth(recipe: Recipe, out: Path, *, resume: bool = False,
                max_steps: int | None = None, progress: bool = True,
                threads: int | None = None) -> DepthRunResult:
    """Train every leave-one-out fold of `recipe`, then the all-scenes model, into `out`."""
    if threads:
        torch.set_num_threads(threads)
    spec = check_depth_recipe(recipe)
    recorded = out / "recipe.yaml"
    if recorded.exists() and not resume:
        raise FileExistsError(f"{out} already holds a run; use --resume to continue it")
    if resume and not recorded.exists():
        raise FileNotFoundError(f"nothing to resume: {recorded} does not exist")
    scales = recipe.scales or (recipe.scale,)
    scenes = [scene for name in recipe.data.train for scene in depth_scenes(name, scales)[1]]
    if resume:
        _check_same(recipe, recorded)
    else:
        out.mkdir(parents=True, exist_ok=True)
        recorded.write_text(yaml.safe_dump(recipe.to_dict(), sort_keys=False))
    names = [scene.name for scene in scenes]
    folds = [*leave_one_out(names), (ALL_SCENES, names)]
    rmse = {}
    for held_out, trained_on in folds:
        fold = _Fold(recipe, spec, out / held_out, [s for s in scenes if s.name in trained_on],
                     next((s for s in scenes if s.name == held_out), None), progress)
        last_rmse = fold.run(max_steps)
        if last_rmse:
            rmse[held_out] = last_rmse
    return DepthRunResult(out, min(max_steps or math.inf, recipe.schedule.steps), rmse)


def _check_same(recipe: Recipe, recorded: Path) -> None:
    before, now = load_recipe(recorded).to_dict(), recipe.to_dict()
    changed = sorted(key for key in now if now[key] != before.get(key))
    if changed:
        raise ValueError(f"--resume with a recipe that differs from {recorded} in "
                         f"{', '.join(changed)}")


def scene_tensors(scene: DepthScene, scale: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The scene's LR depth at `scale` (1 x h x w) and its guide (3 x H x W), as a guided
    model reads them."""
    lr = torch.from_numpy(scene.lr(scale))[None]
    if (lr.shape[1] * scale, lr.shape[2] * scale) != scene.depth.shape:
        raise ValueError(f"{scene.name}: its x{scale} LR map {tuple(lr.shape[1:])} is not "
                         f"1/{scale} of the depth map's {scene.depth.shape}")
    return lr, torch.from_numpy(scene.guide).permute(2, 0, 1)


class PatchStream:
    """Random aligned patches of (LR depth, guide, HR depth) from several scenes, one scale
    per batch drawn from `scales`, from a seeded generator whose state a checkpoint keeps
    (exact resume). HR patches are `patch` pixels square (a multiple of every scale), their
    LR patches patch / scale, cut on the LR grid so that both stay aligned."""

    def __init__(self, scenes: list[DepthScene], scales: tuple[int, ...], patch: int,
                 batch: int, augment: bool, seed: int) -> None:
        if any(patch % scale for scale in scales):
            raise ValueError(f"the HR patch ({patch} pixels) must divide by every scale "
                             f"{list(scales)}")
        self.inputs = {(i, s): (*scene_tensors(scene, s), torch.from_numpy(scene.depth)[None])
                       for i, scene in enumerate(scenes) for s in scales}
        self.scenes, self.scales = len(scenes), scales
        self.patch, self.batch, self.augment = patch, batch, augment
        self.rng = np.random.default_rng(seed)

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(LR N x 1 x p x p, guide N x 3 x P x P, HR N x 1 x P x P), p = P / scale."""
        scale = self.scales[self.rng.integers(len(self.scales))]
        size = self.patch // scale
        lrs, guides, hrs = [], [], []
        for _ in range(self.batch):
            lr, guide, hr = self.inputs[(int(self.rng.integers(self.scenes)), scale)]
            top = int(self.rng.integers(lr.shape[1] - size + 1))
            left = int(self.rng.integers(lr.shape[2] - size + 1))
            crops = [lr[:, top:top + size, left:left + size],
                     *(x[:, top * scale:(top + size) * scale, left * scale:(left + size) * scale]
                       for x in (guide, hr))]
            if self.augment:  # flips and 90-degree turns, the same for all three
                turns, flip = (int(v) for v in self.rng.integers(0, (4, 2)))
                crops = [torch.rot90(c, turns, (1, 2)) for c in crops]
                crops = [c.flip(2) for c in crops] if flip else crops
            for stack, crop in zip((lrs, guides, hrs), crops, strict=True):
                stack.append(crop)
        return torch.stack(lrs), torch.stack(guides), torch.stack(hrs)

    def state_dict(self) -> dict[str, Any]:
        return self.rng.bit_generator.state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state


class _Fold:
    """One fold: its model, optimiser and patch stream, and what a checkpoint restores."""

    def __init__(self, recipe: Recipe, spec: ModelSpec, out: Path, train: list[DepthScene],
                 held_out: DepthScene | None, progress: bool) -> None:
        self.recipe, self.out, self.held_out, self.progress = recipe, out, held_out, progress
        self.trained_on = [scene.name for scene in train]
        self.scales = recipe.scales or (recipe.scale,)
        torch.manual_seed(recipe.seed)
        self.model = spec.build(recipe.scale)  # reads the scale from the guide's size
        self.optimizer = build_optimizer(recipe, self.model)
        self.stream = PatchStream(train, self.scales, recipe.data.patch * recipe.scale,
                                  recipe.data.batch, recipe.data.augment, recipe.seed)
        self.criterion = {"l1": F.l1_loss, "mse": F.mse_loss}.get(recipe.loss)
        if self.criterion is None:
            raise ValueError(f"the depth trainer uses loss l1 or mse, not {recipe.loss!r}")
        self.fields = ["step", "loss", "lr", "seconds",
                       *(f"val_rmse_x{s}" for s in self.scales)]

    def run(self, max_steps: int | None) -> dict[int, float]:
        """Train to the end of the schedule (or `max_steps`); the held-out RMSE last logged."""
        recipe, last = self.recipe, self.out / "last.pt"
        total = min(recipe.schedule.steps, max_steps or recipe.schedule.steps)
        step, elapsed = 0, 0.0
        if last.exists():
            step, elapsed = self._restore(load_checkpoint(last))
        else:
            self.out.mkdir(parents=True, exist_ok=True)
        _truncate_log(self.out / "log.csv", step, self.fields)
        started = time.perf_counter() - elapsed
        running, count = 0.0, 0
        bar = tqdm(total=total, initial=min(step, total), unit="step", leave=False,
                   desc=f"{self.out.name}", disable=not self.progress, dynamic_ncols=True)
        self.model.train()
        while step < total:
            rate = learning_rate(recipe, step)
            for group in self.optimizer.param_groups:
                group["lr"] = rate * group["multiplier"]
            lr, guide, hr = self.stream.next_batch()
            loss = self.criterion(self.model(lr, guide), hr)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            step += 1
            running, count = running + loss.item(), count + 1
            bar.update(1)
            validate = step % recipe.validate_every == 0 or step == total
            if not (validate or step % recipe.checkpoint_every == 0):
                continue
            row: dict[str, Any] = {"step": step, "loss": running / count, "lr": rate,
                                   "seconds": round(time.perf_counter() - started, 1)}
            running, count = 0.0, 0
            if validate:
                row.update({f"val_rmse_x{s}": round(r, 4) for s, r in self.validate().items()})
            _append_log(self.out / "log.csv", row, self.fields)
            save_checkpoint(self._state(step, time.perf_counter() - started), last)
        bar.close()
        if step >= recipe.schedule.steps and not (self.out / WEIGHTS).exists():
            save_weights(self.model, self.out / WEIGHTS,
                         {"model": str(recipe.model), "scales": ",".join(map(str, self.scales)),
                          "held_out": self.held_out.name if self.held_out else ALL_SCENES,
                          "trained_on": ",".join(self.trained_on), "step": str(step)})
        return self._last_rmse()

    @torch.no_grad()
    def validate(self) -> dict[int, float]:
        """RMSE of the held-out scene at every scale, on the whole map."""
        if self.held_out is None:
            return {}
        self.model.eval()
        scores = {}
        for scale in self.scales:
            lr, guide = scene_tensors(self.held_out, scale)
            sr = self.model(lr[None], guide[None])[0, 0]
            scores[scale] = rmse_255(sr.numpy(), self.held_out.depth)
        self.model.train()
        return scores

    def _last_rmse(self) -> dict[int, float]:
        path = self.out / "log.csv"
        with open(path, newline="") as f:
            rows = [r for r in csv.DictReader(f) if r.get(self.fields[-1])]
        return {s: float(rows[-1][f"val_rmse_x{s}"]) for s in self.scales} if rows else {}

    def _state(self, step: int, seconds: float) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "stream": self.stream.state_dict(), "torch_rng": torch.get_rng_state(),
                "step": step, "seconds": seconds}

    def _restore(self, state: dict[str, Any]) -> tuple[int, float]:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.stream.load_state_dict(state["stream"])
        torch.set_rng_state(state["torch_rng"])
        return state["step"], state["seconds"]


def fold_weights(run: Path) -> dict[str, Path]:
    """The finished folds of a run folder: held-out scene (or `all`) -> weights file."""
    return {folder.name: folder / WEIGHTS for folder in sorted(run.iterdir())
            if (folder / WEIGHTS).is_file()}




def release_folds(run: Path, recipe_name: str, scales: tuple[int, ...] = (4, 8, 16)) -> Path:
    """Ship a finished leave-one-out run into the zoo (`zoo/<model>/`): every fold's weights,
    then their held-out RMSE on the run's depth sets measured by `superres eval`'s path (each
    scene by the fold that left it out), and the training cost; returns the index file."""
    from superres.depth import evaluate_depth

    recipe = load_recipe(run / "recipe.yaml")
    model = str(recipe.model)
    files = fold_weights(run)
    if ALL_SCENES not in files or len(files) < 3:
        raise FileNotFoundError(f"{run} has no finished folds and all-scenes model to ship")
    hours = 0.0
    for fold in files:
        with open(run / fold / "log.csv", newline="") as f:
            hours += float(list(csv.DictReader(f))[-1]["seconds"]) / 3600
    record = {"recipe": recipe_name, "steps_per_fold": recipe.schedule.steps,
              "train_hours": round(hours, 2)}
    add_shipped_folds(model, files, record)
    scores = {name: {str(scale): round(evaluate_depth(model, scale, name).rmse, 4)
                     for scale in scales} for name in recipe.data.train}
    return add_shipped_folds(model, files, {**record, "rmse": scores})
