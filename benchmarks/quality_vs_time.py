"""Quality against CPU time of every shipped model, beside interpolation: what each costs.

    python benchmarks/quality_vs_time.py [-s 2 3 4] [-d Set14] [--rounds 3] [--sparse-coding]
        [--degradation realesrgan] [--json docs/quality_vs_time.json]
        [--figure docs/quality_vs_time.svg] [--crops docs/shipped_crops.png]

For each scale: bicubic, Lanczos, every natural-image model with shipped weights for that
scale (face and video models are left out; sparse coding, minutes per image, only with
--sparse-coding), and the default model with the x8
geometric self-ensemble (TTA). Each method upscales the test set's bicubic-downscaled images
through `superres.load(...).upscale` (uint8 RGB in and out, the whole user path) on one
thread, timed in process CPU time, which other jobs on the machine disturb little; the
outputs are scored with the standard protocol (PSNR/SSIM on Y, `scale` pixels shaved, as
`superres eval`). `--degradation` makes the LR as `superres eval --degradation` does (a fixed
seed per image), for the realistic benchmark, where the photo model is what is measured;
otherwise the LR is bicubic. Methods under SLOW seconds are timed again, the best of `rounds`
interleaved rounds. Prints a Markdown table per scale with each method's time as a ratio to
bicubic's in the same run; writes the runs as `superres eval --json` does (with the clock
they were timed by), which `superres report` turns into a page; and draws, with the same
functions as `superres report` (`superres.report`), PSNR against time and the same HR crops
from every x3 method side by side. docs/benchmarks.md was made with it.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
from timing import best_times

from superres.data import dataset_images
from superres.image.degrade import Degradation, modcrop, parse_degradation
from superres.image.io import read_image
from superres.inference.upscaler import Upscaler, load
from superres.metrics.protocol import score
from superres.models import MODELS, default_model
from superres.report import crop_sheet, dataset_crop_rows, parse_run, psnr_time_svg, write_text
from superres.weights import shipped_weights

SLOW = 30.0  # CPU seconds: a method this slow over the set is timed by its first run alone
Scores = tuple[float, float]  # mean PSNR (dB), mean SSIM

# Set14 windows for the crops figure, whatever the test set (top, left of a 96 x 96 HR
# window), with fine detail: stripes, fur and skin, fine ornament.
CROPS = {"zebra": (80, 260), "baboon": (40, 150), "comic": (60, 60)}


def methods(scale: int, sparse_coding: bool) -> dict[str, Upscaler]:
    """Interpolation, the shipped models, and the default with TTA, for `scale`, by the
    label `superres report` gives them."""
    has_weights = {w.model for w in shipped_weights() if w.scale == scale and w.natural_images}
    if not sparse_coding:
        has_weights.discard("sparse-coding")
    shipped = [name for name in MODELS if name in has_weights]  # the registry's order
    found = {name: load(name, scale) for name in ("bicubic", "lanczos", *shipped)}
    best = default_model(scale).name
    if best in shipped:
        found[f"{best} + TTA"] = load(best, scale, tta=True)
    return found


def run_json(label: str, scale: int, dataset: str, images: int, found: Scores,
             seconds: float, rounds: int, degradation: str) -> dict:
    """One method's result as `superres eval --json` writes it, timed by this script's clock."""
    psnr, ssim = found
    model, tta = label.removesuffix(" + TTA"), label.endswith(" + TTA")
    return {"model": model, "scale": scale, "channel": "y", "degradation": degradation,
            "tta": tta, "clock": f"CPU time, one thread, best of {rounds} rounds",
            "results": [{"dataset": dataset, "images": images, "psnr": psnr, "ssim": ssim,
                         "seconds": seconds}]}


def pairs(dataset: str, scale: int,
          degradation: Degradation) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The test set's HR images and their LR, as `superres eval` makes them."""
    _, paths = dataset_images(dataset)
    hr = [modcrop(read_image(p).pixels, scale) for p in paths]
    return hr, [degradation.of_image(image, scale, path.name)
                for image, path in zip(hr, paths, strict=True)]


def mean_scores(sr: list[np.ndarray], hr: list[np.ndarray], scale: int) -> Scores:
    """Mean PSNR and SSIM on Y over the images, as the papers average them."""
    found = [score(s, h, scale, "y") for s, h in zip(sr, hr, strict=True)]
    return float(np.mean([f.psnr for f in found])), float(np.mean([f.ssim for f in found]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-s", "--scales", type=int, nargs="+", default=[2, 3, 4])
    parser.add_argument("-d", "--dataset", default="Set14")
    parser.add_argument("--rounds", type=int, default=3, help="timing rounds (default 3)")
    parser.add_argument("--sparse-coding", action="store_true",
                        help="include sparse coding (x3; minutes per image)")
    parser.add_argument("--degradation", default="bicubic",
                        help="how LR is made, as `superres eval --degradation` (default bicubic)")
    parser.add_argument("--json", type=Path, help="write the runs here, one per line")
    parser.add_argument("--figure", type=Path, help="write the PSNR-vs-time plot here (SVG)")
    parser.add_argument("--crops", type=Path, help="write the x3 crops figure here (PNG)")
    args = parser.parse_args()
    torch.set_num_threads(1)

    degradation = parse_degradation(args.degradation)
    print(f"{args.dataset}, LR by {args.degradation}; PSNR/SSIM on Y, scale pixels shaved; "
          f"CPU ms per image on one thread, best of {args.rounds} interleaved rounds. "
          f"Load average at the start: {os.getloadavg()[0]:.1f}.\n")
    runs: list[dict] = []
    for scale in args.scales:
        upscalers = methods(scale, args.sparse_coding)
        hr, lr = pairs(args.dataset, scale, degradation)
        seconds, scores = {}, {}
        for name, upscaler in upscalers.items():  # the first run: its outputs are scored
            start = time.process_time()
            sr = [upscaler.upscale(image) for image in lr]
            seconds[name] = time.process_time() - start
            scores[name] = mean_scores(sr, hr, scale)
        fast = {name: (lambda u=u, lr=lr: [u.upscale(image) for image in lr])
                for name, u in upscalers.items() if seconds[name] < SLOW}
        seconds |= best_times(fast, args.rounds, time.process_time)
        runs += [run_json(name, scale, args.dataset, len(lr), scores[name], seconds[name],
                          args.rounds, args.degradation) for name in upscalers]
        print(f"| x{scale} | PSNR (dB) | SSIM | CPU ms per image | time / bicubic |")
        print("| --- | --- | --- | --- | --- |")
        for name, (psnr, ssim) in scores.items():
            print(f"| {name} | {psnr:.2f} | {ssim:.4f} | {seconds[name] * 1000 / len(lr):.0f} "
                  f"| {seconds[name] / seconds['bicubic']:.1f} |")
        print()
    print(f"Load average at the end: {os.getloadavg()[0]:.1f}.")
    if args.json:
        write_text(args.json, "".join(json.dumps(run) + "\n" for run in runs))
        print(f"wrote {args.json}")
    if args.figure:
        write_text(args.figure, psnr_time_svg([parse_run(run) for run in runs],
                                              standalone=True))
        print(f"wrote {args.figure}")
    if args.crops:
        sheet = crop_sheet(methods(3, args.sparse_coding), dataset_crop_rows("Set14", 3, CROPS))
        sheet.save(args.crops, optimize=True)
        print(f"wrote {args.crops}")


if __name__ == "__main__":
    main()
