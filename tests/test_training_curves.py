"""docs/training_curves.py: runs are read from their logs, and a fine-tune is placed after
the run it started from."""

import csv
import importlib.util
import sys
from pathlib import Path

import pytest
import yaml

pytest.importorskip("matplotlib")
SCRIPT = Path(__file__).resolve().parent.parent / "docs" / "training_curves.py"
spec = importlib.util.spec_from_file_location("training_curves", SCRIPT)
training_curves = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = training_curves  # dataclasses look their module up there
spec.loader.exec_module(training_curves)


def _run(runs: Path, name: str, scale: int, rows: list[tuple[int, float, float]],
         init: str | None = None) -> None:
    folder = runs / name
    folder.mkdir(parents=True)
    recipe = {"model": "fsrcnn", "scale": scale, "init": init}
    (folder / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    with open(folder / "log.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, ["step", "loss", "val_psnr", "seconds"])
        writer.writeheader()
        for step, psnr, seconds in rows:
            writer.writerow({"step": step, "loss": 0.01, "val_psnr": psnr, "seconds": seconds})
        writer.writerow({"step": step + 1, "loss": 0.01, "val_psnr": "", "seconds": 1e6})


def test_a_fine_tune_starts_where_its_parent_reached_its_best(tmp_path):
    runs = tmp_path / "checkpoints"
    _run(runs, "fsrcnn_x3", 3, [(1000, 32.0, 3600.0), (2000, 32.5, 7200.0),
                                (3000, 32.4, 10800.0)])
    _run(runs, "fsrcnn_x2", 2, [(1000, 36.0, 360.0)], init="zoo:fsrcnn_x3")
    _run(runs, "fsrcnn_x3_tune", 3, [(1000, 32.6, 720.0)],
         init="checkpoints/fsrcnn_x3/best.safetensors")
    found = {c.name: c for c in training_curves.curves(runs)}
    assert found["fsrcnn_x3"].hours == [1.0, 2.0, 3.0]
    assert found["fsrcnn_x3"].psnr == [32.0, 32.5, 32.4]
    assert found["fsrcnn_x2"].hours == [2.1]  # the parent's best came at 2 h
    assert found["fsrcnn_x3_tune"].hours == [2.2]
    out = tmp_path / "curves.png"
    training_curves.draw(list(found.values()), out)
    assert out.stat().st_size > 10_000
