"""Benchmark evaluation: upscale a test set's bicubic LR images and score them.

Each HR image is read as uint8, modcropped to the scale, downscaled with MATLAB-style
bicubic (rounded to uint8), upscaled by the model on the whole image, quantised to uint8
and scored on the Y channel with `scale` pixels shaved (see `superres.metrics`), or on the
channel a registered set names as its own (RGB for the face sets, as face SR papers report)
unless the caller asks for one. Perceptual
measures (`metrics=[VGGFeatureDistance(), NIQEScore()]`) are taken on the same SR images.

Another `degradation` (BD, DN, JPEG, Real-ESRGAN; see `superres.image.degrade`) makes the LR
instead, so that a model is measured on what it was trained for; a random one draws from a
generator seeded by the image's file name, so its scores are the same on every run.

A video set (Vid4, or a folder of sequence folders) is scored frame by frame as the video SR
papers do, a video model seeing each frame's temporal window, with a temporal-consistency
measure beside PSNR (`evaluate_video`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from superres.data import dataset_images, dataset_sequences, get_dataset, is_video_set
from superres.image.degrade import (
    Degradation,
    DegradationSpec,
    modcrop,
    parse_degradation,
)
from superres.image.io import read_image
from superres.inference.temporal import temporal_windows, upscale_window
from superres.inference.upscaler import Upscaler
from superres.metrics.protocol import Channel, ImageMetric, score
from superres.metrics.temporal import WarpingError


@dataclass(frozen=True)
class ImageScore:
    """The score of one test image."""

    image: str
    psnr: float
    ssim: float
    extra: dict[str, float] = field(default_factory=dict)  # further metrics, by name


@dataclass(frozen=True)
class DatasetResult:
    """Mean PSNR/SSIM over one test set (mean of per-image values, as the papers do)."""

    dataset: str
    images: int
    psnr: float
    ssim: float
    seconds: float  # time spent in the model (LR synthesis and scoring excluded)
    per_image: list[ImageScore] = field(default_factory=list)
    extra: dict[str, float] = field(default_factory=dict)  # means of further metrics, by name
    channel: Channel = "y"  # what was scored: sets may differ within one run

    def to_json(self, per_image: bool = False) -> dict:
        """The scores as a flat mapping: further metrics sit beside psnr and ssim."""
        data = _flatten(asdict(self))
        if per_image:
            data["per_image"] = [_flatten(image) for image in data["per_image"]]
        else:
            del data["per_image"]
        return data


def _flatten(data: dict) -> dict:
    return {**{k: v for k, v in data.items() if k != "extra"}, **data["extra"]}


def default_channel(dataset_name: str) -> Channel:
    """The channel a registered set is scored on (Y for a plain folder of HR images)."""
    try:
        return get_dataset(dataset_name).channel
    except KeyError:
        return "y"


def evaluate_dataset(
    upscaler: Upscaler,
    dataset: str,
    *,
    channel: Channel | None = None,
    progress: bool = True,
    metrics: Sequence[ImageMetric] = (),
    degradation: DegradationSpec = "bicubic",
    temporal: bool = True,
) -> DatasetResult:
    """Score `upscaler` on a registered test set or a folder of HR images, its LR made by
    `degradation`; `metrics` are measured too, on the same uint8 SR images (their means land
    in `extra`). `channel` None scores on the set's own channel (`default_channel`).
    A video set (or a folder of sequence folders) is scored by `evaluate_video`, with the
    warping error unless `temporal` is False."""
    degradation = parse_degradation(degradation)
    if is_video_set(dataset):
        return evaluate_video(upscaler, dataset, channel=channel, progress=progress,
                              metrics=metrics, degradation=degradation, temporal=temporal)
    name, paths = dataset_images(dataset)
    channel = channel or default_channel(name)
    scale = upscaler.scale
    scores: list[ImageScore] = []
    seconds = 0.0
    for path in tqdm(paths, desc=f"{name} x{scale}", unit="img", disable=not progress, leave=False):
        picture = read_image(path)
        if picture.bit_depth != 8:
            raise ValueError(f"{path}: evaluation uses 8-bit images, this one is 16-bit")
        hr = modcrop(picture.pixels, scale)
        lr = degradation.of_image(hr, scale, path.name)
        start = time.perf_counter()
        sr = upscaler.upscale(lr)
        seconds += time.perf_counter() - start
        result = score(sr, hr, scale, channel)
        extra = {metric.name: metric(sr, hr, scale) for metric in metrics}
        scores.append(ImageScore(path.stem, result.psnr, result.ssim, extra))
    return DatasetResult(
        dataset=name,
        images=len(scores),
        psnr=float(np.mean([s.psnr for s in scores])),
        ssim=float(np.mean([s.ssim for s in scores])),
        seconds=seconds,
        per_image=scores,
        extra={m.name: float(np.mean([s.extra[m.name] for s in scores])) for m in metrics},
        channel=channel,
    )


def evaluate_video(
    upscaler: Upscaler,
    dataset: str,
    *,
    channel: Channel | None = None,
    progress: bool = True,
    metrics: Sequence[ImageMetric] = (),
    degradation: DegradationSpec = "bicubic",
    temporal: bool = True,
) -> DatasetResult:
    """Score `upscaler` on every frame of every sequence of a video set, as the video SR
    papers report (BasicVSR's protocol): each GT frame modcropped and degraded on its own
    (MATLAB bicubic by default), the video model run on its temporal window (edge frames
    replicated, `superres.inference.temporal`), an image model frame by frame; Y-PSNR/SSIM
    with no border shaved, over all frames (first and last included), averaged per sequence,
    then over the sequences. `temporal`: also the warping error of consecutive SR frames
    under the GT's flow (`superres.metrics.temporal`), in `extra` as `warp_error`.
    `per_image` holds one entry per sequence."""
    degradation = parse_degradation(degradation)
    name, sequences = dataset_sequences(dataset)
    channel = channel or default_channel(name)
    scale, radius = upscaler.scale, upscaler.spec.radius
    per_sequence: list[ImageScore] = []
    seconds, frames = 0.0, 0
    bar = tqdm(total=sum(len(p) for p in sequences.values()), desc=f"{name} x{scale}",
               unit="frame", disable=not progress, leave=False)
    for sequence, paths in sequences.items():
        warping = WarpingError() if temporal else None
        scores: list[tuple[float, float, dict[str, float]]] = []
        pairs = _frame_pairs(sequence, paths, scale, degradation)
        for window in temporal_windows(pairs, radius):
            hr = window[radius][0]
            start = time.perf_counter()
            sr = upscale_window(upscaler, [lr for _, lr in window])
            seconds += time.perf_counter() - start
            result = score(sr, hr, scale, channel, border=0)
            scores.append((result.psnr, result.ssim,
                           {metric.name: metric(sr, hr, scale) for metric in metrics}))
            if warping is not None:
                warping.add(sr, hr)
            bar.update()
        frames += len(scores)
        extra = {m.name: float(np.mean([e[m.name] for _, _, e in scores])) for m in metrics}
        if warping is not None:
            extra["warp_error"] = warping.value
        per_sequence.append(ImageScore(sequence, float(np.mean([p for p, _, _ in scores])),
                                       float(np.mean([q for _, q, _ in scores])), extra))
    bar.close()
    keys = list(per_sequence[0].extra)
    return DatasetResult(
        dataset=name,
        images=frames,
        psnr=float(np.mean([s.psnr for s in per_sequence])),
        ssim=float(np.mean([s.ssim for s in per_sequence])),
        seconds=seconds,
        per_image=per_sequence,
        extra={key: float(np.mean([s.extra[key] for s in per_sequence])) for key in keys},
        channel=channel,
    )


def _frame_pairs(sequence: str, paths: Sequence[Path], scale: int,
                 degradation: Degradation) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(HR, LR) of each frame of a sequence, read one at a time; a random degradation is
    seeded by the sequence and frame names, so every run gets the same LR."""
    for path in paths:
        picture = read_image(path)
        if picture.bit_depth != 8 or picture.channels != 3:
            raise ValueError(f"{path}: video evaluation uses 8-bit RGB frames")
        hr = modcrop(picture.pixels, scale)
        yield hr, degradation.of_image(hr, scale, f"{sequence}/{path.name}")


def evaluate(
    upscaler: Upscaler,
    datasets: Sequence[str],
    *,
    channel: Channel | None = None,
    progress: bool = True,
    metrics: Sequence[ImageMetric] = (),
    degradation: DegradationSpec = "bicubic",
) -> list[DatasetResult]:
    """Score `upscaler` on each of `datasets` (registered names or HR folders), its LR made
    by `degradation` (bicubic by default), each on `channel` or else its own channel."""
    degradation = parse_degradation(degradation)
    return [
        evaluate_dataset(upscaler, d, channel=channel, progress=progress, metrics=metrics,
                         degradation=degradation)
        for d in datasets
    ]
