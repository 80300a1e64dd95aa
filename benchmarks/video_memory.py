"""Video memory benchmark: peak resident memory of `superres upscale` on a video, by length.

    python benchmarks/video_memory.py [--model bicubic] [--scale 2] [--frames 100 1000]
        [--size 640x360] [--weights FILE]

For each length, a synthetic clip (a moving gradient with texture, MPEG-4) is upscaled in
a fresh process, and that process's peak RSS is printed: with streaming it must not grow
with the number of frames (a video model holds its 2r + 1 frame window, no more).
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np


def make_clip(path: Path, frames: int, width: int, height: int) -> None:
    """A clip whose content moves a pixel a frame, so that every frame differs."""
    import av

    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (height, width + frames, 3), dtype=np.uint8)
    with av.open(str(path), "w") as writer:
        stream = writer.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(
                np.ascontiguousarray(texture[:, i : i + width]), format="rgb24")
            writer.mux(stream.encode(frame))
        writer.mux(stream.encode(None))


def run(clip: Path, out: Path, model: str, scale: int, weights: str | None) -> float:
    """Upscale `clip` in a child process; its peak RSS in MiB (Linux reports KiB)."""
    command = [sys.executable, "-m", "superres", "upscale", str(clip), "-m", model,
               "-s", str(scale), "-o", str(out), "-q", "--overwrite"]
    if weights:
        command += ["-w", weights]
    subprocess.run(command, check=True)
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="bicubic")
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--frames", nargs="+", type=int, default=[100, 1000])
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--weights")
    args = parser.parse_args()
    width, height = (int(n) for n in args.size.split("x"))
    print(f"| {args.model} x{args.scale}, {args.size} | frames | peak RSS (MiB) |")
    print("|---|---|---|")
    for frames in sorted(args.frames):
        with tempfile.TemporaryDirectory() as folder:
            clip = Path(folder) / "clip.mp4"
            make_clip(clip, frames, width, height)
            peak = run(clip, Path(folder) / "out.mp4", args.model, args.scale, args.weights)
        # RUSAGE_CHILDREN is the largest child so far: lengths run in increasing order
        print(f"| | {frames} | {peak:.0f} |")


if __name__ == "__main__":
    main()
