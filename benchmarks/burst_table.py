"""Multi-frame SR benchmark: PSNR of every burst method against frame count, and its plot.

    python benchmarks/burst_table.py [--datasets Set5 Set14] [--scale 2] [--crop 256]
        [--frames 1 2 4 8 16] [--noise 0 2] [--plot docs/burst_psnr.png]

For each HR image (centre crop of `crop` px, modcropped) and noise level, a synthetic burst
of max(frames) uint8 frames is simulated (`superres.classic.burst.synthetic_burst`, seeded by image
index), registered, and reconstructed from its first N frames by each method; the uint8
result is scored with the standard protocol (`superres.metrics.protocol.score`: Y channel,
`scale` px
shaved). Prints Markdown tables (PSNR, registration error, run time) and draws the PSNR
against frame count; docs/burst.md was made with it.
"""

from __future__ import annotations

import os

# The solvers multiply many small matrices: BLAS threads only contend for the cores.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402

from superres.classic.burst import METHODS, register_burst, synthetic_burst, upscale_burst  # noqa: E402
from superres.data.registry import dataset_images  # noqa: E402
from superres.image.degrade import modcrop, to_uint  # noqa: E402
from superres.image.io import read_image  # noqa: E402
from superres.image.resize import imresize  # noqa: E402
from superres.metrics.protocol import score  # noqa: E402

COLOURS = {
    "bicubic": (120, 120, 120),
    "shift-and-add": (31, 119, 180),
    "ibp": (255, 127, 14),
    "map-btv": (44, 160, 44),
    "pocs": (214, 39, 40),
    "frequency": (148, 103, 189),
}


def centre_crop(image: np.ndarray, size: int, scale: int) -> np.ndarray:
    """The central size x size part (the whole side when shorter), modcropped to the scale."""
    height, width = image.shape[:2]
    top, left = max(0, (height - size) // 2), max(0, (width - size) // 2)
    return modcrop(image[top : top + size, left : left + size], scale)


def run_dataset(
    name: str, scale: int, crop: int, counts: list[int], noise: float, seed: int
) -> tuple[dict[str, dict[int, float]], float, list[float], dict[str, float], int]:
    """Mean PSNR per method and frame count, bicubic PSNR, registration errors, seconds."""
    _, paths = dataset_images(name)
    psnr: dict[str, dict[int, list[float]]] = {m: {n: [] for n in counts} for m in METHODS}
    bicubic, errors, seconds = [], [], dict.fromkeys(METHODS, 0.0)
    for index, path in enumerate(paths):
        hr = centre_crop(read_image(path).pixels, crop, scale)
        hr = hr[..., 0] if hr.shape[2] == 1 else hr
        burst = synthetic_burst(hr, scale, max(counts), np.random.default_rng([seed, index]),
                                noise_sigma=noise)
        motion = register_burst(burst.frames)
        errors.extend(np.abs(motion - burst.motion)[1:, :2].ravel())
        bicubic.append(score(to_uint(imresize(burst.frames[0], scale)), hr, scale).psnr)
        for method in METHODS:
            for count in counts:
                start = time.perf_counter()
                sr = upscale_burst(burst.frames[:count], scale, method, motion=motion[:count])
                seconds[method] += time.perf_counter() - start
                psnr[method][count].append(score(to_uint(sr), hr, scale).psnr)
    means = {m: {n: float(np.mean(v)) for n, v in by_count.items()} for m, by_count in psnr.items()}
    return means, float(np.mean(bicubic)), errors, seconds, len(paths)


def draw_plot(results: dict[tuple[str, float], tuple], counts: list[int], path: Path) -> None:
    """PSNR against frame count (log2 axis): a panel per dataset (columns) and noise (rows)."""
    panel_w, panel_h, margin = 420, 320, 56
    names = list(dict.fromkeys(name for name, _ in results))
    noises = list(dict.fromkeys(noise for _, noise in results))
    font = ImageFont.load_default(size=13)
    image = Image.new("RGB", (panel_w * len(names) + 160, panel_h * len(noises) + 20), "white")
    draw = ImageDraw.Draw(image)
    for (name, noise), (means, bicubic, *_) in results.items():
        x0 = names.index(name) * panel_w + margin
        y0 = noises.index(noise) * panel_h + 30
        width, height = panel_w - margin - 20, panel_h - 80
        values = [bicubic, *(v for by_count in means.values() for v in by_count.values())]
        low, high = np.floor(min(values)), np.ceil(max(values))
        positions = np.log2(counts)

        def at(count_index: float, value: float, *, x0=x0, y0=y0, width=width, height=height,
               low=low, high=high, positions=positions) -> tuple[float, float]:
            x = x0 + width * (count_index - positions[0]) / (positions[-1] - positions[0])
            return x, y0 + height * (high - value) / (high - low)

        for value in np.arange(low, high + 0.5, 1.0 if high - low <= 10 else 2.0):
            _, y = at(positions[0], value)
            draw.line([x0, y, x0 + width, y], fill=(230, 230, 230))
            draw.text((x0 - 8, y), f"{value:.0f}", fill="black", font=font, anchor="rm")
        for count, position in zip(counts, positions, strict=True):
            x, _ = at(position, low)
            draw.text((x, y0 + height + 6), str(count), fill="black", font=font, anchor="mt")
        draw.text((x0 + width / 2, y0 + height + 24), "frames", fill="black", font=font,
                  anchor="mt")
        draw.text((x0 + width / 2, y0 - 22), f"{name}, noise sigma {noise:g}: PSNR (dB, Y)",
                  fill="black", font=font, anchor="mt")
        draw.rectangle([x0, y0, x0 + width, y0 + height], outline="black")
        _, y = at(positions[0], bicubic)
        for x in range(int(x0), int(x0 + width), 12):
            draw.line([x, y, x + 6, y], fill=COLOURS["bicubic"], width=2)
        for method, by_count in means.items():
            points = [at(p, by_count[c]) for c, p in zip(counts, positions, strict=True)]
            draw.line(points, fill=COLOURS[method], width=2)
            for x, y in points:
                draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=COLOURS[method])
    legend_x = panel_w * len(names) + 10
    for row, (label, colour) in enumerate(COLOURS.items()):
        y = 40 + 20 * row
        draw.line([legend_x, y, legend_x + 24, y], fill=colour, width=3)
        draw.text((legend_x + 30, y), label + (" (1 frame)" if label == "bicubic" else ""),
                  fill="black", font=font, anchor="lm")
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["Set5", "Set14"])
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--frames", nargs="+", type=int, default=[1, 2, 4, 8, 16])
    parser.add_argument("--noise", nargs="+", type=float, default=[0.0, 2.0],
                        help="per-frame noise sigmas, grey levels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", type=Path, default=Path("docs/burst_psnr.png"))
    args = parser.parse_args()

    start = time.perf_counter()
    results = {
        (name, noise): run_dataset(name, args.scale, args.crop, args.frames, noise, args.seed)
        for noise in args.noise
        for name in args.datasets
    }
    print(f"x{args.scale}, centre crops of {args.crop} px, seed {args.seed}")
    for noise in args.noise:
        print(f"\nnoise sigma {noise:g} grey levels per frame\n")
        print("| set | method | " + " | ".join(f"{n} fr." for n in args.frames) + " |")
        print("|---|---|" + "---|" * len(args.frames))
        for name in args.datasets:
            means, bicubic, *_ = results[name, noise]
            print(f"| {name} | bicubic (frame 0) | {bicubic:.2f} |"
                  + " |" * (len(args.frames) - 1))
            for method, by_count in means.items():
                cells = " | ".join(f"{by_count[n]:.2f}" for n in args.frames)
                print(f"| {name} | {method} | {cells} |")
    print("\n| set | noise | images | registration error, mean (px) | max (px) |")
    print("|---|---|---|---|---|")
    for (name, noise), (_, _, errors, _, images) in results.items():
        print(f"| {name} | {noise:g} | {images} | {np.mean(errors):.4f} | {np.max(errors):.4f} |")
    print("\nseconds per image, all frame counts together\n")
    print("| method | " + " | ".join(f"{n}, noise {s:g}" for n, s in results) + " |")
    print("|---|" + "---|" * len(results))
    for method in METHODS:
        cells = " | ".join(f"{r[3][method] / r[4]:.1f}" for r in results.values())
        print(f"| {method} | {cells} |")
    draw_plot(results, args.frames, args.plot)
    print(f"\nplot: {args.plot}; total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
