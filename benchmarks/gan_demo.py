"""Perceptual-SR demo: a two-stage run's PSNR-oriented and GAN weights, measured and shown.

    python benchmarks/gan_demo.py --psnr runs/srvgg_x4_demo_psnr/best.safetensors \
        --gan runs/srvgg_x4_demo_gan/latest.safetensors [-m srvgg-s] [-s 4] [-d Set14]
        [--niqe-model niqe_pristine.npz | --pristine BSD100] [--figure docs/perceptual_crops.png]

Bicubic, both stages and the HR images are scored on the test set with the standard protocol
(PSNR/SSIM on Y, `scale` pixels shaved), the VGG19 feature distance to HR on relu2_2 + relu3_1
(`superres.metrics.perceptual.VGGFeatureDistance`) and NIQE (`superres.metrics.niqe`).
Without the authors'
pristine model (--niqe-model), NIQE uses a model fitted on the --pristine images: it ranks
images, but its numbers are not comparable with published NIQE. Prints a Markdown table, how
many images each stage wins, and draws the same HR crops from every method side by side.
docs/perceptual.md was made with it.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open

from superres.data import dataset_images
from superres.evaluation import DatasetResult, evaluate_dataset
from superres.image.degrade import modcrop
from superres.image.io import read_image
from superres.inference.upscaler import load
from superres.metrics.niqe import NIQEModel, NIQEScore, fit_niqe_model, load_niqe_model, niqe
from superres.metrics.perceptual import VGGFeatureDistance
from superres.metrics.protocol import shave
from superres.report import crop_sheet, dataset_crop_rows

# Textured regions of Set14 (top, left of a 96 x 96 window in HR pixels): fur, stripes,
# a woven cloth, a printed pattern — where the two stages differ most.
CROPS = {"baboon": (340, 30), "zebra": (80, 260), "barbara": (360, 80), "comic": (60, 60)}


def training_time(weights: Path) -> str:
    """The step at which the run saved `weights` (their metadata) and the training time to
    it (the run's log.csv beside them)."""
    with safe_open(str(weights), "pt") as handle:
        step = (handle.metadata() or {}).get("step")
    log = weights.parent / "log.csv"
    if step is None or not log.is_file():
        return "unknown"
    with open(log, newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["step"] == step]
    return f"step {step}, {float(rows[0]['seconds']) / 60:.1f} min" if rows else f"step {step}"


def pristine_model(args: argparse.Namespace) -> tuple[NIQEModel, str]:
    """The authors' model if given, else one fitted on the pristine set (and how it was got)."""
    if args.niqe_model:
        return load_niqe_model(args.niqe_model), "authors' pristine model"
    start = time.perf_counter()
    model = fit_niqe_model(args.pristine, progress=True)
    seconds = time.perf_counter() - start
    return model, f"pristine model self-fitted on {args.pristine} ({seconds:.0f} s)"


def hr_niqe(dataset: str, scale: int, model: NIQEModel) -> float:
    """Mean NIQE of the modcropped HR images, shaved as the SR images are."""
    _, paths = dataset_images(dataset)
    return float(np.mean([
        niqe(shave(modcrop(read_image(p).pixels, scale), scale), model) for p in paths
    ]))


def wins(results: list[DatasetResult], key: str) -> int:
    """On how many images the GAN stage (last) scores lower than the PSNR stage (before it)."""
    psnr_stage, gan_stage = results[-2].per_image, results[-1].per_image
    return sum(g.extra[key] < p.extra[key] for p, g in zip(psnr_stage, gan_stage, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--psnr", type=Path, required=True, help="PSNR-stage weights")
    parser.add_argument("--gan", type=Path, required=True, help="GAN-stage weights")
    parser.add_argument("-m", "--model", default="srvgg-s",
                        help="the generator (default srvgg-s)")
    parser.add_argument("-s", "--scale", type=int, default=4)
    parser.add_argument("-d", "--dataset", default="Set14")
    parser.add_argument("--niqe-model", help="the authors' pristine model (.npz)")
    parser.add_argument("--pristine", default="BSD100",
                        help="set to fit a NIQE model on without --niqe-model (default BSD100)")
    parser.add_argument("--figure", type=Path, help="write the crops figure here (PNG)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    upscalers = {
        "bicubic": load("bicubic", args.scale),
        "PSNR stage": load(args.model, args.scale, weights=args.psnr),
        "GAN stage": load(args.model, args.scale, weights=args.gan),
    }
    model, niqe_source = pristine_model(args)
    metrics = [VGGFeatureDistance(), NIQEScore(model)]
    results = [evaluate_dataset(u, args.dataset, metrics=metrics) for u in upscalers.values()]

    print(f"{args.dataset} x{args.scale}, {results[0].images} images; PSNR/SSIM on Y, "
          f"{args.scale} px shaved; VGG distance on relu2_2 + relu3_1; NIQE with the "
          f"{niqe_source}. PSNR stage: {training_time(args.psnr)}; GAN stage: "
          f"{training_time(args.gan)}.\n")
    print("| method | PSNR (dB) | SSIM | VGG distance | NIQE |")
    print("| --- | --- | --- | --- | --- |")
    for name, r in zip(upscalers, results, strict=True):
        print(f"| {name} | {r.psnr:.2f} | {r.ssim:.4f} | {r.extra['vgg_distance']:.4f} | "
              f"{r.extra['niqe']:.2f} |")
    print(f"| HR | — | — | 0 | {hr_niqe(args.dataset, args.scale, model):.2f} |")
    count = results[-1].images
    print(f"\nThe GAN stage scores a lower VGG distance than the PSNR stage on "
          f"{wins(results, 'vgg_distance')}/{count} images, a lower NIQE on "
          f"{wins(results, 'niqe')}/{count}.")
    if args.figure:
        crop_sheet(upscalers, dataset_crop_rows(args.dataset, args.scale, CROPS)).save(
            args.figure, optimize=True)
        print(f"wrote {args.figure}")


if __name__ == "__main__":
    main()
