"""Peak memory and time of `superres upscale` on a large photo, each run in a fresh process.

    python benchmarks/peak_memory.py [--size 6000x4000] [--size 1500x1000] [--scale 4]
                                     [--format png tif jpg] [--threads N]
                                     [-- EXTRA UPSCALE OPTIONS]

For each size, writes a synthetic JPEG photo (smooth gradients, edges and fine texture, so
that it compresses like a photograph), runs `superres upscale PHOTO -s SCALE -o OUT.FORMAT`
in a subprocess for each output format, with the default model for the scale (the one
`superres upscale` picks without -m), and prints the child's peak resident memory
(ru_maxrss from wait4) and wall time, next to the sizes of the input and output images as
8-bit RGB for scale.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def synthetic_photo(width: int, height: int, seed: int = 0) -> Image.Image:
    """A photo-like RGB image: gradients, a few hard-edged shapes, and mild noise."""
    rng = np.random.default_rng(seed)
    y = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    x = np.linspace(0, 1, width, dtype=np.float32)[None, :]
    rgb = np.empty((height, width, 3), np.uint8)
    for c, (fx, fy) in enumerate([(3.0, 2.0), (5.0, 1.5), (2.0, 4.0)]):
        plane = 110 + 70 * np.sin(2 * np.pi * fx * x + c) * np.cos(2 * np.pi * fy * y)
        plane = plane + 40 * ((x * 17 + y * 11) % 1 > 0.5)  # hard edges
        plane = plane + rng.normal(0, 6, (height, width)).astype(np.float32)
        rgb[..., c] = np.clip(plane, 0, 255)
    return Image.fromarray(rgb, "RGB")


def save_photo(path: Path, width: int, height: int) -> None:
    """The photo as a camera would write it: a JPEG."""
    synthetic_photo(width, height).save(path, quality=95)


def run_upscale(photo: Path, out: Path, scale: int, extra: list[str]) -> tuple[float, int]:
    """(wall seconds, peak RSS bytes) of one `superres upscale` in a fresh process."""
    command = [sys.executable, "-m", "superres.cli", "upscale", str(photo), "-s", str(scale),
               "-o", str(out), "--overwrite", "-q", *extra]
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f"superres upscale failed with exit code {process.returncode}")
    return seconds, usage.ru_maxrss * 1024  # Linux reports kilobytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", action="append", metavar="WxH",
                        help="photo size (repeatable; default 6000x4000 and 1500x1000)")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--format", nargs="+", default=["png", "tif", "jpg"],
                        choices=["png", "tif", "jpg"], help="output formats (default all)")
    parser.add_argument("--threads", type=int, help="passed to superres upscale --threads")
    parser.add_argument("extra", nargs="*", help="more `superres upscale` options, after --")
    args = parser.parse_args()
    from superres.models import default_model

    sizes = args.size or ["6000x4000", "1500x1000"]
    extra = [*args.extra, *(["--threads", str(args.threads)] if args.threads else [])]
    model = default_model(args.scale).name
    print(f"superres upscale -s {args.scale} (default model: {model}) {' '.join(extra)}")
    print("| input | output | format | output as uint8 RGB | peak RSS | wall time |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for size in sizes:
            width, height = (int(v) for v in size.lower().split("x"))
            photo = Path(folder) / f"photo_{size}.jpg"
            # Drawn in a process of its own: a child started by this one reports this one's
            # high-water mark too (Linux carries it over exec), so this one must stay small.
            maker = multiprocessing.get_context("fork").Process(
                target=save_photo, args=(photo, width, height))
            maker.start()
            maker.join()
            for suffix in args.format:
                out = Path(folder) / f"out_{size}.{suffix}"
                seconds, peak = run_upscale(photo, out, args.scale, extra)
                output_bytes = width * height * args.scale**2 * 3
                print(f"| {width}x{height} | {width * args.scale}x{height * args.scale} | "
                      f"{suffix.upper()} | {output_bytes / 1e9:.2f} GB | {peak / 1e9:.2f} GB | "
                      f"{seconds:.0f} s |", flush=True)
                out.unlink()
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"(this script's own peak, a floor under the numbers above: {own / 1e9:.2f} GB)")


if __name__ == "__main__":
    main()
