"""Learn the coupled dictionaries of sparse-coding SR and write them as the shipped file.

    SUPERRES_DATA=path/to/datasets python benchmarks/sparse_coding_dictionary.py --scale 3 \\
        [--checkpoint sparse_coding_x3.pt] [--out src/superres/zoo/sparse_coding_x3.safetensors]

The settings are the paper's and its released code's (1024 atoms, 100,000 patch pairs from
T91, penalty 0.15, 40 iterations; see `superres.train.dictionary`) with seed 0, which is how
the shipped x3 file was made. With --checkpoint, the run saves after every iteration and a
second call with the same settings resumes it. Prints the learning time, the objective per
iteration and the file's sha256 (what the zoo index records).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from superres.files import file_digest
from superres.train.dictionary import (
    ITERATIONS,
    PATCHES,
    PENALTY,
    DictionarySettings,
    learn_dictionaries,
    save_dictionaries,
)
from superres.weights import ZOO


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=3)
    parser.add_argument("--atoms", type=int, default=1024)
    parser.add_argument("--patches", type=int, default=PATCHES)
    parser.add_argument("--penalty", type=float, default=PENALTY)
    parser.add_argument("--iterations", type=int, default=ITERATIONS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint", type=Path, help="save/resume the run here")
    parser.add_argument("--out", type=Path, help="default: the zoo's sparse_coding_x{scale}")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = DictionarySettings(scale=args.scale, atoms=args.atoms, patches=args.patches,
                                  penalty=args.penalty, iterations=args.iterations,
                                  seed=args.seed)
    learned = learn_dictionaries(settings, checkpoint=args.checkpoint)
    out = args.out or ZOO / f"sparse_coding_x{args.scale}.safetensors"
    save_dictionaries(learned, out)
    print(f"{learned.pairs} training pairs, {learned.seconds / 3600:.2f} h on "
          f"{args.threads} thread(s)")
    print("objective per iteration: " + ", ".join(f"{v:.4f}" for v in learned.objective))
    print(f"wrote {out} (sha256 {file_digest(out)})")


if __name__ == "__main__":
    main()
