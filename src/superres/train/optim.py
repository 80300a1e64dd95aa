"""Optimisation: the learning-rate schedule as a pure function of the step (nothing to
checkpoint), parameter groups with per-parameter rate multipliers, and the weights' EMA."""

from __future__ import annotations

import math
from fnmatch import fnmatchcase

import torch
from torch import nn

from superres.train.recipe import Recipe


def learning_rate(recipe: Recipe, step: int) -> float:
    """The base learning rate at `step`: a pure function, so nothing to checkpoint."""
    sched, base = recipe.schedule, recipe.optimizer.lr
    if sched.warmup and step < sched.warmup:
        return base * (step + 1) / sched.warmup
    if sched.name == "constant":
        return base
    if sched.name == "step":
        return max(base * sched.gamma ** (step // sched.step_size), sched.min_lr)
    if sched.name == "multistep":
        passed = sum(step >= milestone for milestone in sched.milestones)
        return max(base * sched.gamma**passed, sched.min_lr)
    if sched.name == "cosine":
        progress = min(step / max(sched.steps, 1), 1.0)
        return sched.min_lr + 0.5 * (base - sched.min_lr) * (1 + math.cos(math.pi * progress))
    raise ValueError(f"unknown schedule {sched.name!r}; choose constant, step, multistep or cosine")


def lr_multiplier(multipliers: dict[str, float], name: str) -> float:
    """The rate multiplier of parameter `name`: its longest matching prefix key's, times
    every matching pattern key's (keys with `*` or `?`, e.g. `*.bias`)."""
    prefixes = [key for key in multipliers if not _is_pattern(key) and name.startswith(key)]
    multiplier = multipliers[max(prefixes, key=len)] if prefixes else 1.0
    for key, value in multipliers.items():
        if _is_pattern(key) and fnmatchcase(name, key):
            multiplier *= value
    return multiplier


def _is_pattern(key: str) -> bool:
    return "*" in key or "?" in key


def build_optimizer(recipe: Recipe, model: nn.Module) -> torch.optim.Optimizer:
    """Parameter groups by lr multiplier (see `lr_multiplier`)."""
    opt = recipe.optimizer
    trainable = recipe.trainable
    groups: dict[float, list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if trainable and not any(name.startswith(prefix) for prefix in trainable):
            param.requires_grad_(False)
            continue
        groups.setdefault(lr_multiplier(opt.lr_multipliers, name), []).append(param)
    if not groups:
        raise ValueError(f"no parameter matches trainable prefixes {trainable}")
    param_groups = [{"params": ps, "multiplier": m} for m, ps in sorted(groups.items())]
    if opt.name == "adam":
        return torch.optim.Adam(param_groups, lr=opt.lr, betas=opt.betas,
                                weight_decay=opt.weight_decay)
    if opt.name == "sgd":
        return torch.optim.SGD(param_groups, lr=opt.lr, momentum=opt.momentum,
                               weight_decay=opt.weight_decay)
    raise ValueError(f"unknown optimizer {opt.name!r}; choose adam or sgd")


class EMA:
    """Exponential moving average of the weights (evaluated and saved instead of the raw ones)."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for key, value in model.state_dict().items():
            self.shadow[key].lerp_(value, 1 - self.decay)
