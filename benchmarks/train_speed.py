"""Training-loop speed: optimiser steps per second for the small models on this CPU, and
the share of each step spent drawing the batch (to show data is off the critical path).

    python benchmarks/train_speed.py [--threads N] [--steps 20]

Random batches of each recipe's patch and batch size; the patch sampler is timed on random
images. The baseline, measured in the same run, is the plain layout: contiguous tensors and
PyTorch's transposed-convolution kernel; the trainer's layout is channels-last activations
with the transposed convolution computed as phases + pixel shuffle (the same function).
"""

from __future__ import annotations

import argparse
import time
from functools import partial

import numpy as np
import torch
from torch import nn

import superres
from superres.nn.upsamplers import TransposedConv
from superres.train.losses import pixel_loss
from superres.train.patches import PatchSampler
from superres.train.recipe import load_recipe


def steps_per_second(name: str, scale: int, patch: int, batch: int, steps: int,
                     plain: bool) -> float:
    model = superres.build(name, scale)
    lr, hr = torch.rand(batch, 1, patch, patch), torch.rand(batch, 1, patch * scale, patch * scale)
    if plain:  # PyTorch's own transposed-convolution kernel on the same weights
        for module in model.modules():
            if isinstance(module, TransposedConv):
                module.forward = partial(nn.ConvTranspose2d.forward, module)
    else:
        model.to(memory_format=torch.channels_last)
        lr = lr.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    loss_fn = pixel_loss("mse")
    for i in range(steps + 3):  # 3 warm-up steps
        if i == 3:
            start = time.perf_counter()
        loss = loss_fn(model(lr), hr)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return steps / (time.perf_counter() - start)


def sampler_seconds(scale: int, patch: int, batch: int) -> float:
    rng = np.random.default_rng(0)
    pairs = [(rng.random((100, 150, 1), np.float32), rng.random((100 * scale, 150 * scale, 1),
                                                               np.float32)) for _ in range(50)]
    sampler = PatchSampler(pairs, scale, patch, batch, augment=True, seed=0)
    start = time.perf_counter()
    for _ in range(50):
        sampler.next_batch()
    return (time.perf_counter() - start) / 50


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch threads: {args.threads}")
    print("| recipe | batch x LR patch | plain steps/s | trainer steps/s | ratio "
          "| sampling / step |")
    print("|---|---|---|---|---|---|")
    for name in ("srcnn_x3", "fsrcnn_x2", "fsrcnn_x3", "fsrcnn_x4", "espcn_x3"):
        recipe = load_recipe(name)
        patch, batch = recipe.data.patch, recipe.data.batch
        plain = steps_per_second(recipe.model, recipe.scale, patch, batch, args.steps, True)
        rate = steps_per_second(recipe.model, recipe.scale, patch, batch, args.steps, False)
        share = sampler_seconds(recipe.scale, patch, batch) * rate
        print(f"| {name} | {batch} x {patch}x{patch} | {plain:.2f} | {rate:.2f} "
              f"| {rate / plain:.2f} | {share:.1%} |")


if __name__ == "__main__":
    main()
