"""Long fuzzing runs of the damaged-file properties of tests/test_fuzz.py.

    python benchmarks/fuzz.py [--examples 5000] [-k tif] [--seed N]

Runs the same Hypothesis tests (images read by `read_image`, weights read by
`read_checkpoint` and loaded as `--weights` would be) with many more examples per case and
`read_image`'s default pixel limit, and prints Hypothesis's statistics. A failing example is
shrunk to the smallest damaged file and printed; Hypothesis keeps it in .hypothesis/, so the
next `pytest tests/test_fuzz.py` replays it first.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from superres.image.io import DEFAULT_MAX_PIXELS

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description="Long fuzzing runs of tests/test_fuzz.py.")
    parser.add_argument("--examples", type=int, default=5000,
                        help="examples per format and reader (default 5000; the tests: 40)")
    parser.add_argument("-k", dest="select", metavar="EXPR",
                        help="only the cases matching this pytest -k expression (e.g. tif, "
                             "weights)")
    parser.add_argument("--seed", type=int, help="Hypothesis seed, to repeat a run exactly")
    parser.add_argument("--hang", type=float, default=60.0, metavar="SECONDS",
                        help="an example running this long fails as a hang (default 60)")
    args = parser.parse_args()
    env = {**os.environ, "SUPERRES_FUZZ_EXAMPLES": str(args.examples),
           "SUPERRES_FUZZ_MAX_PIXELS": str(DEFAULT_MAX_PIXELS),
           "SUPERRES_FUZZ_HANG_SECONDS": str(args.hang)}
    command = [sys.executable, "-m", "pytest", str(ROOT / "tests" / "test_fuzz.py"), "-q",
               "--hypothesis-show-statistics"]
    if args.select:
        command += ["-k", args.select]
    if args.seed is not None:
        command.append(f"--hypothesis-seed={args.seed}")
    return subprocess.call(command, cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main())
