"""Sparse-coding SR (Yang et al., TIP 2010) with the shipped x3 dictionary on Set5 (and
Set14), with the standard protocol, next to bicubic and the published figure.

    SUPERRES_DATA=path/to/datasets python benchmarks/sparse_coding_table.py \\
        [--dataset Set5 --dataset Set14] [--tradeoff] [--controls]

Each row is `superres eval`'s protocol (Y channel, shave = scale) on the model built with
the settings named; times are per image on one thread, wall-clock and CPU (the CPU time of
this process: what the method costs, however busy the machine). --tradeoff adds rows that
change one setting each on the first dataset: half the patches per axis (4x faster), and
the released demo's penalty 0.2; --controls adds the model without back-projection and
back-projection without the model (on the bicubic image), to show what each step gives.
Prints the Markdown tables of docs/sparse_coding.md.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import torch

import superres
from superres.evaluation import DatasetResult, evaluate_dataset
from superres.image.resize import imresize
from superres.inference.upscaler import Upscaler
from superres.models.sparse_coding import SPARSE_CODING, SparseCodingSR, back_project
from superres.weights import checked_path, find_weights, load_weights

SCALE = 3


@dataclass(frozen=True)
class Row:
    """One measured setting on one dataset."""

    setting: str
    result: DatasetResult
    cpu_seconds: float


def measure(setting: str, upscaler: Upscaler, dataset: str) -> Row:
    cpu = time.process_time()
    result = evaluate_dataset(upscaler, dataset, progress=False)
    return Row(setting, result, time.process_time() - cpu)


def sparse_coding(weights: Path | None, **options: object) -> Upscaler:
    """The model with the shipped dictionary (or `weights`) and some settings changed."""
    model = SparseCodingSR(SCALE, progress=False, **options)
    load_weights(model, weights or checked_path(find_weights(SPARSE_CODING.name, SCALE)))
    return wrap(model)


def wrap(model: torch.nn.Module) -> Upscaler:
    """A Y-channel module behind the same `Upscaler` that `superres eval` uses."""
    return Upscaler(spec=SPARSE_CODING, scale=SCALE, model=model.eval(),
                    device=torch.device("cpu"))


class BicubicBackProjection(torch.nn.Module):
    """The control: the model's last step alone, on the bicubic image."""

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        return back_project(imresize(lr * 255, SCALE), lr * 255) / 255


def print_rows(rows: list[Row]) -> None:
    print("| set | method | PSNR (dB) | SSIM | s / image (wall) | s / image (CPU) |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        r = row.result
        print(f"| {r.dataset} | {row.setting} | {r.psnr:.2f} | {r.ssim:.4f} | "
              f"{r.seconds / r.images:.1f} | {row.cpu_seconds / r.images:.1f} |")
    for dataset in dict.fromkeys(row.result.dataset for row in rows):
        paper = SPARSE_CODING.reference.get(dataset, {}).get(SCALE)
        if paper:
            print(f"| {dataset} | SC, published (SRCNN paper) | {paper[0]:.2f} | "
                  f"{paper[1]:.4f} | | |")


def print_images(rows: list[Row]) -> None:
    """Per image PSNR of every setting, one column per setting."""
    print("| image | " + " | ".join(row.setting for row in rows) + " |")
    print("|---" * (len(rows) + 1) + "|")
    for scores in zip(*(row.result.per_image for row in rows), strict=True):
        print(f"| {scores[0].image} | " + " | ".join(f"{s.psnr:.2f}" for s in scores) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", action="append", help="default: Set5")
    parser.add_argument("--tradeoff", action="store_true")
    parser.add_argument("--controls", action="store_true")
    parser.add_argument("--weights", type=Path, help="dictionaries to measure (default: "
                        "the shipped x3 file)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    datasets = args.dataset or ["Set5"]
    rows = []
    for dataset in datasets:
        rows.append(measure("bicubic", superres.load("bicubic", SCALE), dataset))
        rows.append(measure("sparse coding (paper settings)", sparse_coding(args.weights),
                            dataset))
        if args.tradeoff and dataset == datasets[0]:
            for setting, options in (("overlap 3 (a patch every 2 pixels)", {"overlap": 3}),
                                     ("penalty 0.2 (the released demo's)", {"penalty": 0.2})):
                rows.append(measure(setting, sparse_coding(args.weights, **options), dataset))
        if args.controls and dataset == datasets[0]:
            rows.append(measure("sparse coding without back-projection",
                                sparse_coding(args.weights, back_projection=0), dataset))
            rows.append(measure("bicubic + back-projection (no sparse coding)",
                                wrap(BicubicBackProjection()), dataset))
        print_images([row for row in rows if row.result.dataset == dataset])
        print()
    print_rows(rows)


if __name__ == "__main__":
    main()
