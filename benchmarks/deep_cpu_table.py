"""Short CPU trainings of the deep CNNs: how far minutes of training get from the papers.

    superres train vdsr_cpu --out runs/deep/vdsr --threads 1       # one run at a time
    python benchmarks/deep_cpu_table.py runs/deep/vdsr [RUN...]     # measure, record
    python benchmarks/deep_cpu_table.py                            # print the table

Measuring a run calls `superres eval -m MODEL -s SCALE -d Set5 -w RUN/best.safetensors
--json` (on one thread) at each scale the run trained, and `-m bicubic` beside it, and records
the scores with the run's steps and times in docs/deep_cpu.json (which the model cards read).
The table adds the paper's Set5 figure and those of the shipped lighter models.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from superres.models import get_model
from superres.train.recipe import load_recipe, shipped_recipes
from superres.weights import shipped_weights

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "deep_cpu.json"
DATASET = "Set5"
LIGHTER = ("espcn", "fsrcnn")  # the shipped models a deep one must beat to be shipped


def set5(model: str, scale: int, weights: Path | None = None) -> tuple[float, float]:
    """(PSNR, SSIM) on Set5 from `superres eval --json`, on one thread."""
    command = [sys.executable, "-m", "superres.cli", "eval", "-m", model, "-s", str(scale),
               "-d", DATASET, "--json", "-q"]
    if weights:
        command += ["-w", str(weights)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    report = json.loads(subprocess.run(command, env=env, check=True, capture_output=True,
                                       text=True).stdout)
    result = report["results"][0]
    return round(result["psnr"], 4), round(result["ssim"], 5)


def measure(run: Path) -> dict:
    """One run's record: recipe, steps, times, and Set5 scores at each trained scale. A run
    folder NAME is the run of the shipped recipe NAME_cpu."""
    name = f"{run.name}_cpu"
    recipe = load_recipe(run / "recipe.yaml")
    if recipe != load_recipe(name):
        raise ValueError(f"{run} was not trained with the shipped recipe {name}")
    with open(run / "log.csv", newline="") as f:
        last = list(csv.DictReader(f))[-1]
    state = torch.load(run / "last.pt", map_location="cpu", weights_only=True)
    weights = run / "best.safetensors"
    scales = recipe.scales or (recipe.scale,)
    paper = _paper_recipe(recipe.model, recipe.scale)
    return {
        "model": recipe.model,
        "recipe": name,
        "paper_recipe": paper,
        "paper_patches": load_recipe(paper).schedule.steps * load_recipe(paper).data.batch,
        "run": f"runs/deep/{run.name}",
        "steps": int(last["step"]),
        "patches": int(last["step"]) * recipe.data.batch,
        "train_minutes": round(float(last["seconds"]) / 60, 1),
        "minutes_with_validation": round(state["seconds"] / 60, 1),
        "weights_sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
        "set5": {str(s): set5(recipe.model, s, weights) for s in scales},
        "bicubic": {str(s): set5("bicubic", s) for s in scales},
    }


def _paper_recipe(model: str, scale: int) -> str:
    """The shipped full-length recipe of `model` at `scale`, the paper's where there is one."""
    names = [name for name, path in shipped_recipes().items() if not name.endswith("_cpu")
             and (load_recipe(path).model, load_recipe(path).scale) == (model, scale)]
    return sorted(names, key=lambda name: not name.endswith("_paper"))[0]


def table(records: list[dict]) -> str:
    """The markdown table of the recorded runs."""
    shipped = {(w.model, w.scale): w.scores.get(DATASET) for w in shipped_weights()}
    lines = [
        f"| model | scale | recipe | steps (patches) | minutes | {DATASET} PSNR / SSIM | "
        "bicubic | paper | shipped lighter models |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for record in records:
        spec = get_model(record["model"])
        for scale, (psnr, ssim) in record["set5"].items():
            paper = spec.reference.get(DATASET, {}).get(int(scale))
            lighter = [f"{name} {shipped[(name, int(scale))][0]:.2f}" for name in LIGHTER
                       if shipped.get((name, int(scale)))]
            lines.append(
                f"| {record['model']} | x{scale} | `{record['recipe']}` | {record['steps']} "
                f"({record['patches']:,}) | {record['train_minutes']} | {psnr:.2f} / {ssim:.4f} "
                f"| {record['bicubic'][scale][0]:.2f} | {paper[0]:.2f} | "
                f"{', '.join(lighter) or 'none shipped'} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", type=Path, help="run folders to measure and record")
    args = parser.parse_args()
    records = {r["run"]: r for r in json.loads(RESULTS.read_text())} if RESULTS.exists() else {}
    for run in args.runs:
        record = measure(run.resolve())
        records[record["run"]] = record
        print(f"measured {record['run']}: {record['set5']}", file=sys.stderr)
    if args.runs:
        RESULTS.write_text(json.dumps(list(records.values()), indent=1) + "\n")
    print(table(list(records.values())))


if __name__ == "__main__":
    main()
