"""The face SR study of docs/face.md: how far the FSRNet test faces' alignment is from the
training faces', what re-aligning them changes for each model, and the figure of face crops.

Landmark-free: the alignment of a set is read from its mean face. The similarity (one scale
about the centre, and a shift) that best maps the mean test face onto the mean training face
(normalised correlation of the grey levels, searched on a grid) is the set's alignment
difference. Every test face is then moved by it (bicubic resampling, edge pixels repeated,
rounded to 8 bits) and scored as a new HR image by the standard protocol, as-is and
re-aligned, on Y and on RGB.

    python benchmarks/face_study.py --figure docs/face_crops.png > docs/face_alignment.json

with the shipped weights (or `--prior`/`--noprior` files). CelebA1000 is represented by its
first `--celeba` faces. `--landmarks` checks only how well the prior branch places the
landmarks of training faces, against answering their mean shape.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F

from superres import load
from superres.data import dataset_images
from superres.data.landmarks import dataset_landmarks
from superres.image.degrade import bicubic_lr
from superres.image.io import read_image
from superres.metrics.protocol import score
from superres.train.faces import HEATMAP_STRIDE, Jitter

SCALE = 8
SIZE = 128
SCALES = np.round(np.arange(0.80, 1.2001, 0.02), 2)  # test-face pixels per training pixel
SHIFTS = np.arange(-20, 21, 2)  # HR pixels


def _grids(scale: float, shifts: np.ndarray) -> torch.Tensor:
    """Sampling grids (len(shifts)^2 x SIZE x SIZE x 2) reading output pixel p at
    centre + scale * (p - centre) + shift of the source, in grid_sample's coordinates."""
    centre = (SIZE - 1) / 2
    axis = centre + scale * (np.arange(SIZE) - centre)
    grids = []
    for dy in shifts:
        for dx in shifts:
            xs, ys = np.meshgrid(axis + dx, axis + dy)
            grids.append(np.stack([(2 * xs + 1) / SIZE - 1, (2 * ys + 1) / SIZE - 1], -1))
    return torch.from_numpy(np.stack(grids)).float()


def _warp(images: torch.Tensor, grids: torch.Tensor) -> torch.Tensor:
    return F.grid_sample(images, grids, mode="bicubic", padding_mode="border",
                         align_corners=False)


def mean_face(dataset: str, count: int | None) -> np.ndarray:
    """The mean grey face (float, 0-255) of the first `count` faces of `dataset`."""
    paths = dataset_images(dataset)[1][:count]
    return np.mean([np.asarray(Image.open(p).convert("L"), dtype=np.float64) for p in paths],
                   axis=0)


def register(moving: np.ndarray, fixed: np.ndarray) -> tuple[float, int, int, float]:
    """The (scale, dx, dy) of the grid that best maps `moving` onto `fixed`, and its
    normalised correlation."""
    target = torch.from_numpy(fixed).float().flatten()
    target = (target - target.mean()) / target.std()
    source = torch.from_numpy(moving).float()[None, None]
    best = (1.0, 0, 0, -1.0)
    for scale in SCALES:
        warped = _warp(source.expand(len(SHIFTS) ** 2, 1, SIZE, SIZE),
                       _grids(float(scale), SHIFTS)).flatten(1)
        warped = (warped - warped.mean(1, keepdim=True)) / warped.std(1, keepdim=True)
        correlation = (warped * target).mean(1)
        index = int(correlation.argmax())
        if correlation[index] > best[3]:
            best = (float(scale), int(SHIFTS[index % len(SHIFTS)]),
                    int(SHIFTS[index // len(SHIFTS)]), float(correlation[index]))
    return best


def realign(face: np.ndarray, scale: float, dx: int, dy: int) -> np.ndarray:
    """`face` (uint8 H x W x 3) moved into the training faces' alignment."""
    image = torch.from_numpy(face.transpose(2, 0, 1)[None].astype(np.float32))
    warped = _warp(image, _grids(scale, np.array([0]))
                   + torch.tensor([2 * dx / SIZE, 2 * dy / SIZE]))[0].numpy()
    return np.clip(np.round(warped.transpose(1, 2, 0)), 0, 255).astype(np.uint8)


def _scores(models: dict[str, object], faces: list[np.ndarray]) -> dict[str, dict[str, list]]:
    """Mean PSNR / SSIM of each model on `faces` (uint8 HR) at x8, on Y and on RGB, by the
    standard protocol (MATLAB bicubic LR, SR rounded to uint8, 8 pixels shaved)."""
    results: dict[str, dict[str, list]] = {}
    for name, upscaler in models.items():
        totals = {"y": np.zeros(2), "rgb": np.zeros(2)}
        for hr in faces:
            sr = np.asarray(upscaler.upscale(bicubic_lr(hr, SCALE)))  # type: ignore[attr-defined]
            for channel, total in totals.items():
                measured = score(sr, hr, SCALE, channel)  # type: ignore[arg-type]
                total += (measured.psnr, measured.ssim)
        results[name] = {channel: [round(float(total[0]) / len(faces), 3),
                                   round(float(total[1]) / len(faces), 4)]
                         for channel, total in totals.items()}
    return results


def landmark_check(weights: str | None, count: int = 100, zoom: float = 1.0,
                   shift: float = 0.0) -> dict[str, float]:
    """How well fsrnet-s's prior branch places the landmarks of the last `count` training
    faces from their x8 LR (the peak of each heatmap), against always answering the training
    faces' mean shape: mean point error in HR pixels. With `zoom` or `shift`, each face's crop
    is first jittered as `data.face_zoom` / `data.face_shift` do in training (seed 0)."""
    model = load("fsrnet-s", SCALE, weights=weights).model
    annotated = dataset_landmarks("FaceTrain")
    paths = list(annotated)[-count:]
    faces = [read_image(p).pixels for p in paths]
    truth = np.stack([annotated[p] for p in paths])
    if zoom > 1 or shift > 0:
        jitters = Jitter.draw(np.random.default_rng(0), len(paths), zoom, shift)
        faces = [j.pixels(face / 255.0) for j, face in zip(jitters, faces, strict=True)]
        truth = np.stack([j.points(t, (SIZE, SIZE)) for j, t in zip(jitters, truth, strict=True)])
    lr = np.stack([bicubic_lr(face, SCALE) for face in faces])
    with torch.no_grad():
        heatmaps = model.outputs(torch.from_numpy(lr.transpose(0, 3, 1, 2) / 255).float())[2]
    width = heatmaps.shape[-1]
    peaks = heatmaps.flatten(2).argmax(-1).numpy()
    found = HEATMAP_STRIDE * (np.stack([peaks % width, peaks // width], -1) + 0.5) - 0.5
    mean_shape = np.stack(list(annotated.values())).mean(axis=0)
    return {"faces": count, "zoom": zoom, "shift": shift,
            "prior_branch_error_px": round(float(np.linalg.norm(found - truth, axis=2).mean()), 2),
            "mean_shape_error_px": round(float(
                np.linalg.norm(mean_shape[None] - truth, axis=2).mean()), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prior", help="fsrnet-s x8 weights (default: shipped)")
    parser.add_argument("--noprior", help="fsrnet-s-noprior x8 weights (default: shipped)")
    parser.add_argument("--celeba", type=int, default=200, help="CelebA1000 faces used")
    parser.add_argument("--figure", type=Path, help="also draw the face crops into this PNG")
    parser.add_argument("--landmarks", action="store_true",
                        help="only check the prior branch's landmarks on training faces")
    parser.add_argument("--jitter", type=float, nargs=2, metavar=("ZOOM", "SHIFT"),
                        default=(1.0, 0.0), help="with --landmarks: jitter the faces' crops")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.landmarks:
        json.dump(landmark_check(args.prior, zoom=args.jitter[0], shift=args.jitter[1]), sys.stdout)
        print()
        return
    models = {"bicubic": load("bicubic", SCALE),
              "fsrnet-s-noprior": load("fsrnet-s-noprior", SCALE, weights=args.noprior),
              "fsrnet-s": load("fsrnet-s", SCALE, weights=args.prior)}
    train_mean = mean_face("FaceTrain", None)
    report: dict[str, object] = {
        "command": "python benchmarks/face_study.py " + " ".join(sys.argv[1:]), "sets": {}}
    for dataset, count in (("FaceHelen50", None), ("FaceCelebA1000", args.celeba)):
        scale, dx, dy, correlation = register(mean_face(dataset, None), train_mean)
        faces = [read_image(path).pixels for path in dataset_images(dataset)[1][:count]]
        as_is = float(np.corrcoef(mean_face(dataset, None).ravel(), train_mean.ravel())[0, 1])
        report["sets"][dataset] = {  # type: ignore[index]
            "faces": len(faces),
            "to_training_alignment": {"scale": scale, "dx": dx, "dy": dy,
                                      "mean_face_correlation": round(correlation, 4),
                                      "as_is_correlation": round(as_is, 4)},
            "as_is": _scores(models, faces),
            "realigned": _scores(models, [realign(face, scale, dx, dy) for face in faces]),
        }
    json.dump(report, sys.stdout, indent=1)
    print()
    if args.figure:
        figure(models, args.figure)


def figure(models: dict[str, object], out: Path, count: int = 4) -> None:
    """Face crops of the first `count` Helen50 faces: x8 LR by bicubic, by the no-prior
    network, by fsrnet-s, and the HR face, with each SR face's Y-PSNR."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = ["bicubic", "fsrnet-s-noprior", "fsrnet-s", "HR"]
    paths = dataset_images("FaceHelen50")[1][:count]
    fig, axes = plt.subplots(count, len(columns), figsize=(2.2 * len(columns), 2.3 * count))
    for row, path in zip(axes, paths, strict=True):
        hr = read_image(path).pixels
        lr = Image.fromarray(bicubic_lr(hr, SCALE))
        for ax, name in zip(row, columns, strict=True):
            image = hr if name == "HR" else np.asarray(models[name].upscale(lr))  # type: ignore[attr-defined]
            title = name
            if name != "HR":
                title = f"{name}\n{score(image, hr, SCALE, 'y').psnr:.2f} dB (Y)"
            ax.imshow(image)
            ax.set_title(title, fontsize=8)
            ax.axis("off")
    fig.tight_layout()
    fig.savefig(out, dpi=100)


if __name__ == "__main__":
    main()
