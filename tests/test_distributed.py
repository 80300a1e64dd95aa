"""Distributed data parallel training on torch.distributed: two CPU processes started by
torchrun (gloo) train to the same weights as one process with the same global batch, and a
killed two-process run resumes to the weights of an uninterrupted one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

import superres
from images import write_smooth_images
from superres.cli import main
from superres.train.distributed import pick_device

STEPS = 6


@pytest.fixture(scope="module")
def recipe_file(tmp_path_factory) -> Path:
    folder = write_smooth_images(tmp_path_factory.mktemp("hr"), 3, (8, 10), (60, 48))
    recipe = {
        "model": "fsrcnn-s", "scale": 2, "seed": 3, "loss": "mse",
        "data": {"train": [str(folder)], "patch": 8, "batch": 4},
        "optimizer": {"name": "adam", "lr": 3.0e-3},
        "schedule": {"name": "constant", "steps": 100},
        "validate_on": str(folder), "validate_every": STEPS, "checkpoint_every": 2,
    }
    path = tmp_path_factory.mktemp("recipe") / "tiny.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def torchrun(*args: str) -> subprocess.CompletedProcess:
    """`torchrun --nproc-per-node 2 -m superres train ...` on CPU, one thread per rank."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(sys.path))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc-per-node", "2", "-m", "superres", "train", *args,
               "--device", "cpu", "--threads", "1", "-q"]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "last.pt", weights_only=True)["model"]


def assert_close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5, msg=key)


def test_two_processes_train_the_weights_of_one_with_the_same_global_batch(recipe_file,
                                                                          tmp_path):
    single, double = tmp_path / "single", tmp_path / "double"
    assert main(["train", str(recipe_file), "--out", str(single), "--max-steps", str(STEPS),
                 "--threads", "1", "--device", "cpu", "-q"]) == 0
    done = torchrun(str(recipe_file), "--out", str(double), "--max-steps", str(STEPS))
    assert done.returncode == 0, done.stderr[-3000:]
    assert_close(weights(double), weights(single))
    torch.manual_seed(3)
    untrained = superres.build("fsrcnn-s", 2).state_dict()
    assert any(not torch.allclose(untrained[k], v) for k, v in weights(single).items())
    # rank 0 alone validated and logged: one row per checkpoint, not two
    rows = (double / "log.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["2", "4", "6"]
    assert_close(load_file(double / "best.safetensors"), load_file(single / "best.safetensors"))


def test_a_killed_two_process_run_resumes_to_the_uninterrupted_weights(recipe_file, tmp_path):
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    assert torchrun(str(recipe_file), "--out", str(whole), "--max-steps", str(STEPS)
                    ).returncode == 0
    # "killed" after step 4: the last checkpoint is step 4, as a kill between checkpoints
    # leaves it; resuming continues to step 6
    assert torchrun(str(recipe_file), "--out", str(broken), "--max-steps", "4").returncode == 0
    resumed = torchrun(str(recipe_file), "--out", str(broken), "--max-steps", str(STEPS),
                       "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_close(weights(broken), weights(whole))


def test_the_convenience_flag_starts_the_same_launcher(recipe_file, tmp_path, monkeypatch):
    started = []
    monkeypatch.setattr("superres.train.distributed.launch",
                        lambda nproc, argv: started.append((nproc, list(argv))))
    assert main(["train", str(recipe_file), "--nproc-per-node", "2", "--max-steps", "1"]) == 0
    assert started == [(2, ["train", str(recipe_file), "--max-steps", "1"])]


def test_an_unavailable_device_is_named():
    with pytest.raises(ValueError, match="tpu"):
        pick_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="not available"):
            pick_device("cuda")
    assert pick_device("cpu") == torch.device("cpu")
