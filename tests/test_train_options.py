"""`superres train` options: `--set` overrides checked like the YAML, `--data`, the effective
recipe in the run folder, mixed precision, and values of the wrong type named."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import yaml

from images import write_smooth_images
from superres.cli import EXIT_USAGE, main
from superres.train.recipe import apply_overrides, load_recipe, parse_recipe


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory) -> Path:
    return write_smooth_images(tmp_path_factory.mktemp("hr"), 3, (8, 10), (60, 48))


@pytest.fixture(scope="module")
def recipe_file(image_folder, tmp_path_factory) -> Path:
    recipe = {
        "model": "fsrcnn-s", "scale": 2, "seed": 1,
        "data": {"train": ["T91"], "patch": 8, "batch": 4},
        "optimizer": {"name": "adam", "lr": 3.0e-3},
        "schedule": {"name": "constant", "steps": 100},
        "validate_on": str(image_folder), "validate_every": 100, "checkpoint_every": 2,
    }
    path = tmp_path_factory.mktemp("recipes") / "tiny.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


@pytest.mark.parametrize(("override", "message"), [
    ("data.patchh=48", r"tiny\.yaml\.data: unknown key\(s\) patchh; known: .*patch"),
    ("data.patch=big", r"data\.patch must be int, not 'big' \(str\)"),
    ("optimizer.lr=2e-4", r"optimizer\.lr must be float.*write 1\.0e-3"),
    ("data.augment=3", r"data\.augment must be bool, not 3"),
    ("optimizer.betas=[0.9]", r"optimizer\.betas must be a list"),
    ("schedule", r"write KEY=VALUE"),
])
def test_a_misspelt_key_or_a_wrong_type_is_named(recipe_file, tmp_path, capsys, override,
                                                 message):
    code = main(["train", str(recipe_file), "--set", override, "--out", str(tmp_path / "r")])
    assert code == EXIT_USAGE
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert re.search(message, err), err
    assert not (tmp_path / "r").exists()  # refused before anything was written


def test_overrides_and_data_reach_the_run_and_its_recorded_recipe(recipe_file, image_folder,
                                                                  tmp_path):
    out = tmp_path / "run"
    assert main(["train", str(recipe_file), "--data", str(image_folder), "--set",
                 "data.patch=6", "--set", "optimizer.lr=1.0e-3", "--set", "loss=l1",
                 "--max-steps", "2", "--out", str(out), "-q", "--threads", "1"]) == 0
    recorded = load_recipe(out / "recipe.yaml")
    assert recorded.data.train == (str(image_folder),)
    assert (recorded.data.patch, recorded.optimizer.lr, recorded.loss) == (6, 1e-3, "l1")
    # resuming needs the same effective recipe
    assert main(["train", str(recipe_file), "--data", str(image_folder), "--set",
                 "data.patch=6", "--set", "optimizer.lr=1.0e-3", "--set", "loss=l1",
                 "--max-steps", "4", "--out", str(out), "-q", "--resume"]) == 0
    assert main(["train", str(recipe_file), "--data", str(image_folder), "--max-steps", "6",
                 "--out", str(out), "-q", "--resume"]) == EXIT_USAGE


def test_overrides_nest_and_parse_values_as_yaml():
    values = apply_overrides({"model": "fsrcnn", "scale": 3},
                             ["data.train=[T91, /photos]", "gan.weight=1.0e-2", "scale=4"])
    assert values == {"model": "fsrcnn", "scale": 4, "data": {"train": ["T91", "/photos"]},
                      "gan": {"weight": 1e-2}}


@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_mixed_precision_trains(image_folder, tmp_path, precision):
    from superres.train.trainer import train

    recipe = parse_recipe({
        "model": "fsrcnn-s", "scale": 2, "seed": 1, "precision": precision,
        "data": {"train": [str(image_folder)], "patch": 8, "batch": 4},
        "optimizer": {"name": "adam", "lr": 3.0e-3},
        "schedule": {"name": "constant", "steps": 100},
        "validate_on": str(image_folder), "validate_every": 3, "checkpoint_every": 3})
    result = train(recipe, tmp_path / "run", max_steps=3, progress=False, device="cpu")
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert all(v.dtype == torch.float32 and torch.isfinite(v).all()
               for v in state["model"].values())  # weights stay float32
    assert result.best_psnr > 10
    assert (state["scaler"]["scale"] > 0) if precision == "float16" else True
