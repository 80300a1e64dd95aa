"""Zero-shot models on Set5 at a CPU budget: ZSSR x2 and the deep image prior x4, with the
standard protocol, next to bicubic and the papers' numbers, plus the time per image.

    SUPERRES_DATA=path/to/datasets python benchmarks/zssr_dip_table.py \\
        [--zssr-budget 60] [--zssr-self-ensemble] [--dip-budget 75] [--dip-width 32]
    ... zssr_dip_table.py --control   # ZSSR with 0 steps: what back-projection alone gives

Both models learn per image, so the budget (seconds per image, final pass included) sets the
quality. ZSSR skips its 8-view self-ensemble unless asked, so that a short budget goes to
training. The deep image prior runs with a narrower hourglass (`--dip-width`) because the
paper's 128 channels take seconds per step on a CPU; the paper network's time per step is
measured on every image (2 steps each) to say what the paper's 2000 steps would cost. How
far the prior's fit got is the LR PSNR of its output downscaled; for scale, the same for
bicubic (upscaled, then downscaled). Prints the Markdown tables of docs/zssr_dip.md.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

import superres
from superres.data import dataset_images
from superres.evaluation import DatasetResult, evaluate_dataset
from superres.image.degrade import bicubic_lr
from superres.image.io import read_image
from superres.image.resize import imresize
from superres.inference.upscaler import Upscaler
from superres.metrics.protocol import psnr
from superres.models.dip import DIP, PAPER_ITERATIONS, DeepImagePrior
from superres.models.registry import ModelSpec
from superres.models.zssr import ZSSR, ZeroShotSR


def run(spec: ModelSpec, model: torch.nn.Module, scale: int, dataset: str) -> DatasetResult:
    """Score `model` (built with non-default options) with the standard protocol."""
    upscaler = Upscaler(spec=spec, scale=scale, model=model.eval(), device=torch.device("cpu"))
    return evaluate_dataset(upscaler, dataset, progress=False)


def bicubic_lr_psnr(dataset: str, scale: int) -> list[float]:
    """Per image: PSNR (RGB, [0, 1]) between the LR image and its bicubic upscaling downscaled
    again, the LR consistency that the prior's fit is measured against."""
    values = []
    for path in dataset_images(dataset)[1]:
        lr = bicubic_lr(read_image(path).pixels, scale).astype(np.float64) / 255
        again = imresize(np.clip(imresize(lr, scale), 0, 1), 1 / scale)
        values.append(psnr(again, lr, peak=1.0))
    return values


def control(dataset: str, self_ensemble: bool) -> None:
    """ZSSR's final pass on an untrained net (its residual starts near zero): bicubic plus
    back-projection, to separate what the learning adds from what back-projection adds."""
    untrained = ZeroShotSR(2, iterations=0, self_ensemble=self_ensemble, progress=False)
    bicubic = evaluate_dataset(superres.load("bicubic", 2), dataset, progress=False)
    result = run(ZSSR, untrained, 2, dataset)
    print("| image | bicubic x2 PSNR | ZSSR x2, 0 steps (bicubic + back-projection) PSNR |")
    print("|---|---|---|")
    for plain, projected in zip(bicubic.per_image, result.per_image, strict=True):
        print(f"| {plain.image} | {plain.psnr:.2f} | {projected.psnr:.2f} |")
    print(f"| mean | {bicubic.psnr:.2f} / {bicubic.ssim:.4f} | "
          f"{result.psnr:.2f} / {result.ssim:.4f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="Set5")
    parser.add_argument("--zssr-budget", type=float, default=60.0, help="seconds per image")
    parser.add_argument("--zssr-self-ensemble", action="store_true")
    parser.add_argument("--dip-budget", type=float, default=75.0, help="seconds per image")
    parser.add_argument("--dip-width", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--control", action="store_true", help="only the 0-step ZSSR control")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.control:
        control(args.dataset, args.zssr_self_ensemble)
        return
    start = time.perf_counter()
    load_before = os.getloadavg()[0]

    zssr = ZeroShotSR(2, time_budget=args.zssr_budget, self_ensemble=args.zssr_self_ensemble,
                      progress=False)
    views = "8 views" if args.zssr_self_ensemble else "1 view"
    dip = DeepImagePrior(4, iterations=PAPER_ITERATIONS[4], time_budget=args.dip_budget,
                         width=args.dip_width, progress=False)
    paper_dip = DeepImagePrior(4, iterations=2, progress=False)  # timing only
    rows = [
        ("bicubic", 2, evaluate_dataset(superres.load("bicubic", 2), args.dataset,
                                        progress=False), None),
        (f"zssr, {args.zssr_budget:g} s/image, {views}", 2, run(ZSSR, zssr, 2, args.dataset),
         ZSSR),
        ("bicubic", 4, evaluate_dataset(superres.load("bicubic", 4), args.dataset,
                                        progress=False), None),
        (f"dip, width {args.dip_width}, {args.dip_budget:g} s/image", 4,
         run(DIP, dip, 4, args.dataset), DIP),
    ]
    paper_timing = run(DIP, paper_dip, 4, args.dataset)
    consistency = bicubic_lr_psnr(args.dataset, 4)

    print(f"{args.dataset}, Y channel, shave = scale; {args.threads} thread(s); "
          f"load average {load_before:.1f} at start\n")
    print("| model | scale | PSNR | SSIM | paper PSNR | paper SSIM | s/image |")
    print("|---|---|---|---|---|---|---|")
    for name, scale, result, spec in rows:
        paper = spec.reference.get(result.dataset, {}).get(scale) if spec else None
        paper_psnr = f"{paper[0]:.2f}" if paper else "-"
        paper_ssim = f"{paper[1]:.4f}" if paper and paper[1] is not None else "-"
        print(f"| {name} | x{scale} | {result.psnr:.2f} | {result.ssim:.4f} | {paper_psnr} | "
              f"{paper_ssim} | {result.seconds / result.images:.1f} |")

    print("\n| image | ZSSR x2 steps | ZSSR s | ZSSR PSNR | DIP x4 steps | DIP s | DIP PSNR | "
          "DIP LR PSNR | bicubic LR PSNR | paper DIP net s/step | paper's 2000 steps |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    zssr_scores, dip_scores = rows[1][2].per_image, rows[3][2].per_image
    for i, name in enumerate(s.image for s in zssr_scores):
        z, d, p = zssr.fits[i], dip.fits[i], paper_dip.fits[i]
        print(f"| {name} | {z.steps} | {z.seconds:.1f} | {zssr_scores[i].psnr:.2f} | "
              f"{d.steps} | {d.seconds:.1f} | {dip_scores[i].psnr:.2f} | {d.lr_psnr:.2f} | "
              f"{consistency[i]:.2f} | {p.step_seconds:.2f} | "
              f"{2000 * p.step_seconds / 3600:.1f} h |")
    print(f"\npaper-net timing run: {paper_timing.seconds:.0f} s; whole benchmark "
          f"{(time.perf_counter() - start) / 60:.1f} min; load average "
          f"{os.getloadavg()[0]:.1f} at end")


if __name__ == "__main__":
    main()
