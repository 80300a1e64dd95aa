"""What a trained High-to-Low generator (docs/unsupervised.md) makes, against the real LR it
imitates and the bicubic LR of the same HR patches: detail (mean |Laplacian|), mean colour,
and its distance to bicubic, on patches drawn as the training run draws them.

    python benchmarks/degrader_statistics.py unpaired_twostep_x4_h2l \
        checkpoints/unpaired_twostep_x4_h2l/degrader.safetensors [--sheet samples.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from superres.image.resize import imresize
from superres.train.recipe import load_recipe
from superres.train.unpaired import UnpairedSampler, load_domain
from superres.train.unpaired_gan import high_to_low
from superres.weights import load_weights


def detail(images: torch.Tensor) -> float:
    """Mean absolute Laplacian in grey levels: noise, blur and JPEG all move it."""
    kernel = torch.tensor([[0.0, 1, 0], [1, -4, 1], [0, 1, 0]]).view(1, 1, 3, 3)
    channels = images.shape[1]
    return float(F.conv2d(images, kernel.repeat(channels, 1, 1, 1), groups=channels)
                 .abs().mean()) * 255


def _tiles(images: torch.Tensor, columns: int = 8) -> np.ndarray:
    rows = [np.concatenate(list(images[i:i + columns].permute(0, 2, 3, 1).numpy()), axis=1)
            for i in range(0, len(images) - columns + 1, columns)]
    return np.concatenate(rows, axis=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe")
    parser.add_argument("weights", type=Path)
    parser.add_argument("--patches", type=int, default=256)
    parser.add_argument("--sheet", type=Path, help="also save bicubic / H2L / real LR rows")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    recipe = load_recipe(args.recipe)
    settings = recipe.unpaired
    if settings is None or settings.method != "h2l":
        raise SystemExit(f"{args.recipe} is not an h2l recipe")
    scale, patch = recipe.scale, recipe.data.patch
    generator = high_to_low(settings, scale, patch * scale, 3)
    load_weights(generator, args.weights)
    generator.eval()
    sampler = UnpairedSampler(load_domain(settings.lr, "rgb", False),
                              load_domain(recipe.data.train, "rgb", False), scale, patch,
                              args.patches, False, seed=1)
    real, hr = sampler.next_batch()
    with torch.no_grad():
        made = generator(hr, generator.sample_noise(len(hr))).clamp(0, 1)
    bicubic = imresize(hr, 1 / scale).clamp(0, 1)
    rmse = float(((made - bicubic) ** 2).mean().sqrt()) * 255
    print(f"{args.patches} patches of {patch}x{patch} LR")
    print("| LR | mean abs Laplacian (grey levels) | mean R, G, B (grey levels) |")
    print("|---|---|---|")
    for name, images in (("real (the unknown chain)", real), ("High-to-Low", made),
                         ("bicubic of the same HR", bicubic)):
        colour = ", ".join(f"{255 * c:.0f}" for c in images.mean(dim=(0, 2, 3)))
        print(f"| {name} | {detail(images):.2f} | {colour} |")
    print(f"High-to-Low against bicubic LR: RMSE {rmse:.2f} grey levels")
    if args.sheet:
        count = min(16, args.patches)
        sheet = np.concatenate([_tiles(x[:count]) for x in (bicubic, made, real)], axis=0)
        image = Image.fromarray((sheet * 255).round().astype(np.uint8))
        image.resize((image.width * 4, image.height * 4), Image.NEAREST).save(args.sheet)


if __name__ == "__main__":
    main()
