"""Training-loop speed: optimiser steps per second for the small models on this CPU, the
share of each step spent drawing the batch (to show data is off the critical path), and how
distributed data parallel training scales: one process with 2 threads against 2 processes
(torchrun, gloo) with 1 thread each, on the same recipe and global batch.

    python benchmarks/train_speed.py [--threads N] [--steps 20] [--ddp-steps 60]

Random batches of each recipe's patch and batch size; the patch sampler is timed on random
images. The baseline, measured in the same run, is the plain layout: contiguous tensors and
PyTorch's transposed-convolution kernel; the trainer's layout is channels-last activations
with the transposed convolution computed as phases + pixel shuffle (the same function).
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch
import yaml
from PIL import Image
from torch import nn

import superres
from superres.data import dataset_images
from superres.nn.upsamplers import TransposedConv
from superres.train.losses import pixel_loss
from superres.train.patches import PatchSampler
from superres.train.recipe import apply_overrides, load_recipe


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


def ddp_steps_per_second(recipe: Path, nproc: int, threads: int, steps: int,
                         out: Path) -> float:
    """Steps/s of `superres train` between its first and last checkpoints (start-up, image
    loading and validation excluded), in `nproc` processes of `threads` threads."""
    launcher = (["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc),
                 "-m", "superres"] if nproc > 1 else ["-m", "superres"])
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    subprocess.run([sys.executable, *launcher, "train", str(recipe), "--out", str(out),
                    "--max-steps", str(steps), "--threads", str(threads), "--device", "cpu",
                    "-q"], env=env, check=True, capture_output=True)
    with open(out / "log.csv", newline="") as f:
        rows = [(int(r["step"]), float(r["seconds"])) for r in csv.DictReader(f)]
    (first, start), (last, end) = rows[0], rows[-1]
    return (last - first) / (end - start)


def scaling(steps: int) -> None:
    """1 process x 2 threads against 2 processes x 1 thread on fsrcnn_x3's patches and global
    batch, trained on T91 (or random smooth images where $SUPERRES_DATA lacks it)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "hr"
        folder.mkdir()
        rng = np.random.default_rng(0)
        for i in range(4):  # a small validation set: validation is not what is timed
            coarse = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
            Image.fromarray(coarse).resize((192, 144), Image.BICUBIC).save(folder / f"{i}.png")
        try:
            dataset_images("T91")
            train_on = "T91"
        except FileNotFoundError:
            train_on = str(folder)
        recipe = Path(tmp) / "fsrcnn_x3_scaling.yaml"
        overrides = [f"data.train=[{train_on}]", f"validate_on={folder}",
                     f"validate_every={steps}", "checkpoint_every=10"]
        values = apply_overrides(load_recipe("fsrcnn_x3").to_dict(), overrides)
        recipe.write_text(yaml.safe_dump(values))
        one = ddp_steps_per_second(recipe, 1, 2, steps, Path(tmp) / "one")
        two = ddp_steps_per_second(recipe, 2, 1, steps, Path(tmp) / "two")
    print(f"\nDistributed data parallel, fsrcnn_x3 (global batch 32 x 32x32 LR) on {train_on}, "
          f"steps 10-{steps}:")
    print("| processes x threads | steps/s | ratio |")
    print("|---|---|---|")
    print(f"| 1 x 2 | {one:.2f} | 1.00 |")
    print(f"| 2 x 1 (torchrun, gloo) | {two:.2f} | {two / one:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--ddp-steps", type=int, default=60,
                        help="steps of each run of the scaling comparison (0: skip it)")
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
    if args.ddp_steps:
        scaling(args.ddp_steps)


if __name__ == "__main__":
    main()
