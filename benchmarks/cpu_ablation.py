"""What each CPU speed-up of the upscaling path buys, on ESPCN (uint8 RGB in, uint8 out).

    python benchmarks/cpu_ablation.py [--size 512] [--rounds 7]

Each variant adds one idea to the one above it; all run on the same image in interleaved
rounds, and each time is the best of the rounds. One thread is timed in process CPU time
(it counts only this process's work, so other jobs on the machine disturb it little);
two threads in wall time (that is what threads are for).

  whole-image path        the image as floats: Y through the model (NHWC), CbCr through
                          the polyphase bicubic, YCbCr -> RGB, round: all at HR size
  streamed, plain model   tiles finished a few rows at a time into the uint8 output, the
                          colour as L + bicubic(RGB - L) (see superres.inference.streaming)
  + fused convolutions    conv + activation in one oneDNN call, tanh as a folded sigmoid,
                          phase planes: colour before the pixel shuffle (superres.inference.fused)
  + bands of rows         the fused network a band of ~128 rows at a time (cache)
and, on two threads, every operation split across both threads against one tile (half the
image) per one-thread worker. Then tile sizes and float16 on ESPCN x2 (with the activation
memory per LR pixel measured by `superres.inference.memory.bytes_per_pixel`), and the oneDNN
post-ops on ESPCN's first layer.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from timing import best_times

import superres
from superres.image.color import rgb_to_ycbcr, ycbcr_to_rgb
from superres.image.degrade import to_uint
from superres.inference.upscaler import Upscaler
from superres.weights import save_weights


def whole_image_path(up: Upscaler, image: np.ndarray) -> np.ndarray:
    """The path before streaming: every step over the whole image at HR size."""
    with torch.no_grad():
        x = torch.from_numpy(image.astype(np.float32)).permute(2, 0, 1)[None] / 255
        ycbcr = rgb_to_ycbcr(x.contiguous(memory_format=torch.channels_last))
        luma = up.model(ycbcr[:, :1])
        rgb = ycbcr_to_rgb(torch.cat([luma, up.bicubic(ycbcr[:, 1:])], dim=1)).clamp_(0, 1)
    return to_uint(rgb[0].permute(1, 2, 0).numpy() * 255)


def variants(weights: Path, scale: int) -> dict[str, Upscaler]:
    plain, unbanded, banded = (superres.load("espcn", scale, weights=weights) for _ in range(3))
    plain._fused = None
    unbanded._fused.strip_elements = 1 << 40
    return {"streamed, plain model": plain, "+ fused convolutions": unbanded,
            "+ bands of rows": banded}


def one_worker(up: Upscaler) -> Upscaler:
    """The same upscaler with every operation split across threads instead of workers."""
    make = up._streamer

    def streamer(*args: object) -> object:
        made = make(*args)
        made.workers = 1
        return made

    up._streamer = streamer
    return up


def post_ops(rounds: int) -> dict[str, float]:
    """oneDNN convolution 1 -> 64, 5 x 5 on 128 x 512 with a tanh or a sigmoid post-op."""
    x = torch.rand(1, 1, 132, 516)
    x = x.as_strided(x.shape, (x.numel(), 1, 516, 1))  # NHWC strides
    weight = torch.randn(64, 1, 5, 5).contiguous(memory_format=torch.channels_last)
    weight = weight.as_strided(weight.shape, (25, 1, 5, 1))
    bias = torch.zeros(64)
    conv = torch.ops.mkldnn._convolution_pointwise

    def run(post: str) -> Callable[[], object]:
        return lambda: conv(x, weight, bias, [0, 0], [1, 1], [1, 1], 1, post, [], "")

    return best_times({p: run(p) for p in ("none", "sigmoid", "tanh")}, rounds,
                      time.process_time)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    image = np.random.default_rng(0).integers(0, 256, (args.size, args.size, 3), np.uint8)
    threads = torch.get_num_threads()
    print(f"ESPCN, {args.size}x{args.size} uint8 RGB in and out; ms, best of {args.rounds}")
    print("| variant | x2, 1 thread (CPU) | x4, 1 thread (CPU) |")
    print("|---|---|---|")
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        ups = {}
        for scale in (2, 4):
            model = superres.build("espcn", scale).eval()
            weights = save_weights(model, Path(folder) / f"espcn_x{scale}.safetensors")
            ups[scale] = variants(weights, scale)
            torch.set_num_threads(1)
            runs = {"whole-image path": lambda up=ups[scale]["+ bands of rows"]:
                    whole_image_path(up, image)}
            runs.update({name: (lambda up=up: up.upscale(image))
                         for name, up in ups[scale].items()})
            results[scale] = best_times(runs, args.rounds, time.process_time)
        for name in results[2]:
            print(f"| {name} | {results[2][name] * 1e3:.0f} | {results[4][name] * 1e3:.0f} |")
        torch.set_num_threads(2)
        print("\n| two threads (wall) | x2 | x4 |")
        print("|---|---|---|")
        two = {}
        for scale in (2, 4):
            split = one_worker(superres.load("espcn", scale, weights=Path(folder) /
                                             f"espcn_x{scale}.safetensors"))
            two[scale] = best_times(
                {"operations split across 2 threads": lambda up=split: up.upscale(image),
                 "2 one-thread tile workers": lambda up=ups[scale]["+ bands of rows"]:
                 up.upscale(image)}, args.rounds, time.perf_counter)
        for name in two[2]:
            print(f"| {name} | {two[2][name] * 1e3:.0f} | {two[4][name] * 1e3:.0f} |")
        torch.set_num_threads(1)
        weights = Path(folder) / "espcn_x2.safetensors"
        print("\n| ESPCN x2, 1 thread (CPU) | ms | activation bytes per LR pixel |")
        print("|---|---|---|")
        ups = {f"tile {tile}": superres.load("espcn", 2, weights=weights, tile=tile)
               for tile in (128, 256, 512)}
        ups["unfused float32 (tile 512)"] = superres.load("espcn", 2, weights=weights, tile=512)
        ups["unfused float32 (tile 512)"]._fused = None
        ups["float16 (tile 512)"] = superres.load("espcn", 2, weights=weights, tile=512,
                                                  precision="float16")
        times = best_times({name: (lambda up=up: up.upscale(image)) for name, up in ups.items()},
                           args.rounds, time.process_time)
        for name, up in ups.items():
            print(f"| {name} | {times[name] * 1e3:.0f} | {up._activation_bytes(1):.0f} |")
    ops = post_ops(args.rounds)
    print("\noneDNN 1->64 5x5 convolution on 128x512, 1 thread (CPU ms): "
          + ", ".join(f"{post} post-op {t * 1e3:.1f}" for post, t in ops.items()))
    torch.set_num_threads(threads)


if __name__ == "__main__":
    main()
