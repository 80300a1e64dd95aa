"""Curriculum learning declared in a recipe: a scale curriculum climbs a pyramid's x2 levels
(LapSRN), a degradation curriculum goes from mild to severe; both resume exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from images import write_smooth_images
from superres.image.resize import imresize
from superres.models import get_model
from superres.train.distributed import start
from superres.train.recipe import parse_recipe
from superres.train.trainer import _Run, train


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory) -> Path:
    return write_smooth_images(tmp_path_factory.mktemp("hr"), 3, (8, 10), (72, 64))


def _recipe(folder: Path, **overrides):
    values = {
        "model": "fsrcnn-s", "scale": 2, "seed": 1, "loss": "mse",
        "data": {"train": [str(folder)], "patch": 6, "batch": 2},
        "optimizer": {"name": "adam", "lr": 1.0e-3},
        "schedule": {"name": "constant", "steps": 100},
        "validate_on": str(folder), "validate_every": 100, "checkpoint_every": 2,
    }
    values.update(overrides)
    return parse_recipe(values)


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "last.pt", weights_only=True)["model"]


def test_a_scale_curriculum_trains_the_lower_levels_first_and_resumes_exactly(image_folder,
                                                                             tmp_path):
    recipe = _recipe(image_folder, model="lapsrn", scale=4, loss="charbonnier",
                     curriculum=[{"until": 2, "scale": 2}])
    seen = []
    original = _Run._step

    def recording(self, step, rate):
        loss = original(self, step, rate)
        seen.append((step, self.model.levels_used, self.samplers[self._phase(step)].scale))
        return loss

    _Run._step = recording
    try:
        train(recipe, tmp_path / "whole", max_steps=4, progress=False)
    finally:
        _Run._step = original
    assert seen == [(0, 1, 2), (1, 1, 2), (2, 2, 4), (3, 2, 4)]
    train(recipe, tmp_path / "split", max_steps=2, progress=False)
    train(recipe, tmp_path / "split", max_steps=4, progress=False, resume=True)
    plain = _recipe(image_folder, model="lapsrn", scale=4, loss="charbonnier")
    train(plain, tmp_path / "plain", max_steps=4, progress=False)
    whole, split = _weights(tmp_path / "whole"), _weights(tmp_path / "split")
    assert all(torch.equal(whole[k], split[k]) for k in whole)
    assert any(not torch.equal(whole[k], v) for k, v in _weights(tmp_path / "plain").items())


def test_a_degradation_curriculum_changes_the_lr_at_its_boundary_and_resumes(image_folder,
                                                                            tmp_path):
    recipe = _recipe(image_folder, curriculum=[
        {"until": 2, "degradation": {"name": "downsample-noise", "sigma": 2}},
        {"until": 4, "degradation": {"name": "downsample-noise", "sigma": 10}}])
    run = _Run(recipe, get_model("fsrcnn-s"), tmp_path / "r", start("cpu"), False, False)
    assert [run._phase(s) for s in (0, 1, 2, 3, 4, 99)] == [0, 0, 1, 1, 2, 2]
    noise = []
    for sampler in run.samplers:
        lr, hr = sampler.next_batch()
        noise.append(float((lr - imresize(hr, 1 / 2)).std() * 255))
    assert noise[0] < noise[1] and noise[2] < noise[0]  # mild, severe, then the recipe's bicubic
    # RGB noise of sigma s seen on Y (BT.601 studio swing): about 0.57 s
    assert 0.6 < noise[0] < 2.0 and 4.5 < noise[1] < 7.0
    train(recipe, tmp_path / "whole", max_steps=6, progress=False)
    train(recipe, tmp_path / "split", max_steps=3, progress=False)
    train(recipe, tmp_path / "split", max_steps=6, progress=False, resume=True)
    whole, split = _weights(tmp_path / "whole"), _weights(tmp_path / "split")
    assert all(torch.equal(whole[k], split[k]) for k in whole)


@pytest.mark.parametrize(("curriculum", "message"), [
    ([{"until": 5, "scale": 2}, {"until": 3}], r"curriculum\[1\]\.until 3 must follow 5"),
    ([{"until": 5, "scal": 2}], r"curriculum\[0\].*unknown key\(s\): scal"),
    ([{"until": 5, "scale": 3}], r"curriculum\[0\]\.scale 3"),
    ([{"until": 500}], r"before the end of the schedule \(100\)"),
    ([{"until": 5, "degradation": "blurry"}], r"curriculum\[0\]\.degradation"),
])
def test_a_bad_curriculum_is_named(image_folder, curriculum, message):
    with pytest.raises(ValueError, match=message):
        _recipe(image_folder, scale=4, curriculum=curriculum)


def test_a_scale_curriculum_needs_a_progressive_model(image_folder, tmp_path):
    with pytest.raises(ValueError, match="not progressive"):
        train(_recipe(image_folder, scale=4, curriculum=[{"until": 2, "scale": 2}]),
              tmp_path / "run", max_steps=2, progress=False)
