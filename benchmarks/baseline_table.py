"""Quality benchmark: a model's PSNR/SSIM on the standard sets next to the published values.

    python benchmarks/baseline_table.py [MODEL] [--datasets Set5 Set14 BSD100] [--scales 2 3 4]

Prints a Markdown table (ours, published, difference) measured with `superres eval`'s
protocol; the table in docs/evaluation.md was made with it for `bicubic`.
"""

from __future__ import annotations

import argparse

import superres
from superres.models import get_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default="bicubic")
    parser.add_argument("--datasets", nargs="+", default=["Set5", "Set14", "BSD100"])
    parser.add_argument("--scales", nargs="+", type=int, default=[2, 3, 4])
    args = parser.parse_args()
    reference = get_model(args.model).reference
    print("| set | scale | PSNR (ours) | PSNR (published) | diff | SSIM (ours) | "
          "SSIM (published) | diff |")
    print("|---|---|---|---|---|---|---|---|")
    for scale in args.scales:
        for result in superres.evaluate(args.model, scale, args.datasets):
            psnr, ssim = reference.get(result.dataset, {}).get(scale, (float("nan"),) * 2)
            print(f"| {result.dataset} | x{scale} | {result.psnr:.3f} | {psnr:.2f} | "
                  f"{result.psnr - psnr:+.3f} | {result.ssim:.4f} | {ssim:.4f} | "
                  f"{result.ssim - ssim:+.4f} |")


if __name__ == "__main__":
    main()
