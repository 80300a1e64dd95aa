"""Side-by-side crops of Vid4 frames x4: bicubic, frame-wise FSRCNN, a video model, HR.

    python benchmarks/video_crops.py [--model vespcn-deep] [--weights FILE]
        [--out docs/video_crops.png]

Each row is a 96 x 96 HR window of a sequence's middle frame, chosen by hand where there is
lettering or regular structure (in the windows with the most gradient energy every method
fails alike), from every method's output on the MATLAB-bicubic x4 LR frames (the
evaluation's LR). The video model sees frames t-r..t+r; the image models frame t alone.
Each method's Y-PSNR on the whole frame (no border shaved, as the Vid4 protocol scores it)
is printed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import superres
from superres.data import dataset_sequences
from superres.image.degrade import bicubic_lr, modcrop
from superres.image.io import read_image
from superres.inference.temporal import upscale_window
from superres.metrics.protocol import score
from superres.report import tile_sheet

SCALE, CROP = 4, 96
# (sequence, top, left) of each row's window in the middle frame
WINDOWS = (("calendar", 190, 150), ("calendar", 440, 250), ("city", 370, 210))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="vespcn-deep")
    parser.add_argument("--weights", type=Path, help="instead of the shipped ones")
    parser.add_argument("--out", type=Path, default=Path("docs/video_crops.png"))
    args = parser.parse_args()

    methods = {name: superres.load(name, SCALE) for name in ("bicubic", "fsrcnn")}
    methods[args.model] = superres.load(args.model, SCALE, weights=args.weights)
    _, sequences = dataset_sequences("Vid4")
    rows = []
    for name, top, left in WINDOWS:
        paths = sequences[name]
        t = len(paths) // 2
        hr = modcrop(read_image(paths[t]).pixels, SCALE)
        window = (slice(top, top + CROP), slice(left, left + CROP))
        reach = max(m.spec.radius for m in methods.values())  # a middle frame: no edge rule
        lr = {i: bicubic_lr(modcrop(read_image(paths[i]).pixels, SCALE), SCALE)
              for i in range(t - reach, t + reach + 1)}
        tiles = []
        for method in methods.values():
            r = method.spec.radius
            sr = upscale_window(method, [lr[i] for i in range(t - r, t + r + 1)])
            psnr = score(sr, hr, SCALE, border=0).psnr
            print(f"{name} frame {t} at ({top}, {left}): {method.name} {psnr:.2f} dB "
                  "(whole frame)")
            tiles.append(sr[window])
        rows.append([*tiles, hr[window]])
    sheet = tile_sheet([*methods, "HR"], rows, crop=CROP)
    sheet.save(args.out, optimize=True)
    print(f"wrote {args.out} ({sheet.width} x {sheet.height})")


if __name__ == "__main__":
    main()
