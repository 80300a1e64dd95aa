"""The GAN stage: D and G alternate, both resume exactly, and weights interpolate."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from superres.cli import EXIT_OK, EXIT_USAGE, main
from superres.train.adversarial import interpolate_weights
from superres.train.recipe import parse_recipe
from superres.train.trainer import train


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("hr")
    rng = np.random.default_rng(0)
    for i in range(2):
        coarse = rng.integers(0, 256, (12, 14, 3), dtype=np.uint8)
        Image.fromarray(coarse).resize((140, 120), Image.BICUBIC).save(folder / f"{i}.png")
    return folder


def _gan_recipe(folder: Path, **gan):
    settings = {"discriminator": "srgan", "perceptual_weight": 0.0, **gan}
    return parse_recipe({
        "model": "srvgg", "scale": 4, "seed": 3, "loss": "l1",
        "data": {"train": [str(folder)], "patch": 24, "batch": 2},
        "optimizer": {"lr": 1e-4}, "schedule": {"name": "constant", "steps": 100},
        "validate_on": str(folder), "validate_every": 2, "checkpoint_every": 2,
        "gan": settings,
    })


def test_a_gan_recipe_is_typed_and_checked(photos):
    recipe = _gan_recipe(photos)
    assert recipe.gan.gan_loss == "ragan" and recipe.gan.weight == 5e-3
    with pytest.raises(ValueError, match=r"gan: unknown key"):
        _gan_recipe(photos, lamda=1)


def test_gan_runs_update_both_networks_and_resume_exactly(photos, tmp_path):
    recipe = _gan_recipe(photos)
    train(recipe, tmp_path / "straight", max_steps=4, progress=False)
    train(recipe, tmp_path / "split", max_steps=2, progress=False)
    train(recipe, tmp_path / "split", resume=True, max_steps=4, progress=False)
    a = torch.load(tmp_path / "straight" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "split" / "last.pt", weights_only=True)
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    for key, value in a["adversarial"]["discriminator"].items():
        assert torch.equal(value, b["adversarial"]["discriminator"][key]), key
    log = (tmp_path / "split" / "log.csv").read_text().splitlines()
    assert log[0].endswith("d_loss") and all(line.split(",")[-1] for line in log[1:])
    assert (tmp_path / "split" / "latest.safetensors").exists()


def test_perceptual_gan_stage_needs_real_vgg_features(photos, tmp_path, monkeypatch):
    monkeypatch.setenv("SUPERRES_WEIGHTS", str(tmp_path / "empty"))
    recipe = _gan_recipe(photos, perceptual_weight=1.0, perceptual_layers={"relu2_2": 1.0})
    with pytest.raises(FileNotFoundError, match="SUPERRES_WEIGHTS"):
        train(recipe, tmp_path / "run", max_steps=1, progress=False)


@pytest.mark.skipif(not os.environ.get("SUPERRES_WEIGHTS"), reason="SUPERRES_WEIGHTS is not set")
def test_gan_stage_with_the_available_vgg_layers_trains(photos, tmp_path):
    recipe = _gan_recipe(photos, perceptual_weight=1.0,
                         perceptual_layers={"relu2_2": 0.5, "relu3_1": 0.5})
    result = train(recipe, tmp_path / "run", max_steps=2, progress=False)
    assert result.steps == 2


def test_network_interpolation_blends_the_two_weight_sets():
    psnr = {"w": torch.zeros(2, 2), "b": torch.ones(3)}
    gan = {"w": torch.ones(2, 2), "b": torch.full((3,), 3.0)}
    half = interpolate_weights(psnr, gan, 0.25)
    torch.testing.assert_close(half["w"], torch.full((2, 2), 0.25))
    torch.testing.assert_close(half["b"], torch.full((3,), 1.5))
    with pytest.raises(ValueError, match="differ in keys"):
        interpolate_weights(psnr, {"w": gan["w"]}, 0.5)


def test_interpolate_command(tmp_path, capsys):
    save_file({"w": torch.zeros(2)}, str(tmp_path / "psnr.safetensors"))
    save_file({"w": torch.ones(2)}, str(tmp_path / "gan.safetensors"))
    out = tmp_path / "blend.safetensors"
    args = ["interpolate", str(tmp_path / "psnr.safetensors"), str(tmp_path / "gan.safetensors")]
    assert main([*args, "--alpha", "0.8", "-o", str(out)]) == EXIT_OK
    torch.testing.assert_close(load_file(str(out))["w"], torch.full((2,), 0.8))
    assert main([*args, "--alpha", "1.5", "-o", str(out)]) == EXIT_USAGE
