"""CPU throughput of superres against OpenCV's dnn_superres pipeline and the arithmetic bound.

    python benchmarks/cpu_throughput.py [--size 512] [--repeats 5] [--threads N]
                                        [--models fsrcnn espcn]

For FSRCNN and ESPCN at x2/x3/x4 on a size x size RGB input, prints megapixels of output
per second for:
  - superres (PyTorch): `superres.load(...).upscale(uint8 array)`, the whole user path
    (BT.601 Y through the network, chroma by bicubic, back to uint8);
  - superres (ONNX Runtime): the same path with `backend="onnx"`;
  - OpenCV: what `cv2.dnn_superres` does for these models (YCrCb, the network on Y through
    `cv2.dnn`, chroma by `cv2.resize` INTER_CUBIC, back to BGR), on the same architecture
    exported to ONNX: the authors' .pb files are not needed for the arithmetic, which is the
    same for any weights;
and the arithmetic lower bound: the model's FLOPs divided by this machine's float32 matmul
FLOP/s (a 1024 x 1024 matmul). All in one run, the three paths and the matmul in
interleaved rounds (each time is the best of `repeats` rounds), so the ratios compare like
with like even on a busy machine; the load average is printed before and after. A second
table times superres (PyTorch) and OpenCV on one thread in process CPU time, which other
jobs on the machine disturb little.

OpenCV is not a superres dependency: `pip install opencv-python-headless` in the
environment that runs this script (it is skipped, saying so, when cv2 is missing).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from timing import best_times
from torch.utils.flop_counter import FlopCounterMode

import superres
from superres.inference.onnx import export_onnx
from superres.weights import save_weights

MODELS = [("fsrcnn", s) for s in (2, 3, 4)] + [("espcn", s) for s in (2, 3, 4)]


MATMUL = 1024  # the matmul that measures this machine's float32 FLOP/s


def model_flops(model: torch.nn.Module, size: int) -> int:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.rand(1, 1, size, size))
    return counter.get_total_flops()


def opencv_pipeline(onnx_path: Path, scale: int) -> Callable[[np.ndarray], np.ndarray] | None:
    try:
        import cv2
    except ImportError:
        return None
    net = cv2.dnn.readNetFromONNX(str(onnx_path))

    def upscale(bgr: np.ndarray) -> np.ndarray:  # mirrors dnn_superres's Y-channel path
        ycrcb = cv2.cvtColor(bgr, cv2.COLOR_BGR2YCrCb)
        y = ycrcb[..., 0].astype(np.float32) / 255.0
        net.setInput(y[None, None])
        sr_y = np.clip(net.forward()[0, 0] * 255.0, 0, 255).astype(np.uint8)
        height, width = sr_y.shape
        chroma = cv2.resize(ycrcb[..., 1:], (width, height), interpolation=cv2.INTER_CUBIC)
        return cv2.cvtColor(np.dstack([sr_y, chroma]), cv2.COLOR_YCrCb2BGR)

    return upscale


def set_threads(threads: int) -> None:
    """The same number of threads for PyTorch and OpenCV."""
    torch.set_num_threads(threads)
    try:
        import cv2

        cv2.setNumThreads(threads)
    except ImportError:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--models", nargs="+", default=sorted({name for name, _ in MODELS}),
                        help="which of fsrcnn, espcn to time (default: both)")
    args = parser.parse_args()
    set_threads(args.threads)
    try:
        import cv2

        opencv_version = cv2.__version__
    except ImportError:
        opencv_version = None
    image = np.random.default_rng(0).integers(0, 256, (args.size, args.size, 3), dtype=np.uint8)
    a, b = torch.rand(MATMUL, MATMUL), torch.rand(MATMUL, MATMUL)
    print(f"{args.size}x{args.size} RGB input, {args.threads} threads, OpenCV "
          f"{opencv_version or 'not installed'}, load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cores")
    print("| model | output MP/s: superres torch | superres onnx | OpenCV dnn | torch / OpenCV "
          "| onnx / OpenCV | bound MP/s | torch / bound |")
    print("|---|---|---|---|---|---|---|---|")
    one_thread = []
    with tempfile.TemporaryDirectory() as folder:
        for name, scale in [(name, scale) for name, scale in MODELS if name in args.models]:
            megapixels = (args.size * scale) ** 2 / 1e6
            model = superres.build(name, scale).eval()
            weights = save_weights(model, Path(folder) / f"{name}_x{scale}.safetensors")
            runs = {"torch": superres.load(name, scale, weights=weights),  # the user's path
                    "onnx": superres.load(name, scale, weights=weights, backend="onnx")}
            runs = {key: (lambda up=up: up.upscale(image)) for key, up in runs.items()}
            path = export_onnx(model, 1, Path(folder) / f"{name}_x{scale}.onnx")
            cv_up = opencv_pipeline(path, scale)
            if cv_up:
                runs["opencv"] = lambda up=cv_up: up(image)
            runs["matmul"] = lambda: a @ b  # in the same rounds: the bound sees the same load
            t = best_times(runs, args.repeats, time.perf_counter)
            t_cv = t.get("opencv", float("nan"))
            t_bound = model_flops(model, args.size) / (2 * MATMUL**3 / t["matmul"])
            print(f"| {name} x{scale} | {megapixels / t['torch']:.1f} | "
                  f"{megapixels / t['onnx']:.1f} | {megapixels / t_cv:.1f} | "
                  f"{t_cv / t['torch']:.2f} | {t_cv / t['onnx']:.2f} | "
                  f"{megapixels / t_bound:.1f} | {t_bound / t['torch']:.2f} |")
            # The same on one thread in process CPU time: what each path costs, whatever
            # else the machine is doing.
            set_threads(1)
            cpu = best_times({k: v for k, v in runs.items() if k in ("torch", "opencv")},
                             args.repeats, time.process_time)
            set_threads(args.threads)
            one_thread.append((f"{name} x{scale}", cpu["torch"], cpu.get("opencv", float("nan"))))
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    print("\n| model | one thread, CPU ms: superres torch | OpenCV dnn | torch / OpenCV |")
    print("|---|---|---|---|")
    for label, t_torch, t_cv in one_thread:
        print(f"| {label} | {t_torch * 1e3:.0f} | {t_cv * 1e3:.0f} | {t_cv / t_torch:.2f} |")


if __name__ == "__main__":
    main()
