"""Training-loop speed: optimiser steps per second for the small models on this CPU, and
the share of each step spent drawing the batch (to show data is off the critical path).

    python benchmarks/train_speed.py [--threads N] [--steps 20]

Random batches of each shipped recipe's patch and batch size; the patch sampler is timed
on the real training sets when $SUPERRES_DATA holds T91 and BSD200, else on random images.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import superres
from superres.data.patches import PatchSampler
from superres.losses import pixel_loss
from superres.train.recipe import load_recipe


def steps_per_second(name: str, scale: int, patch: int, batch: int, steps: int) -> float:
    model = superres.build(name, scale)
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    loss_fn = pixel_loss("mse")
    lr, hr = torch.rand(batch, 1, patch, patch), torch.rand(batch, 1, patch * scale, patch * scale)
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
    print("| recipe | batch x LR patch | steps/s | sampling / step |")
    print("|---|---|---|---|")
    for name in ("srcnn_x3", "fsrcnn_x3", "espcn_x3"):
        recipe = load_recipe(name)
        patch, batch = recipe.data.patch, recipe.data.batch
        rate = steps_per_second(recipe.model, recipe.scale, patch, batch, args.steps)
        share = sampler_seconds(recipe.scale, patch, batch) * rate
        print(f"| {name} | {batch} x {patch}x{patch} | {rate:.1f} | {share:.1%} |")


if __name__ == "__main__":
    main()
