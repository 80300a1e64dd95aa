"""Unpaired SR (docs/unsupervised.md): the cycle, identity and TV losses, Bulat et al.'s
High-to-Low generator, and the two-step GAN and CinCGAN runs, which resume exactly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from superres.api import train
from superres.cli import main
from superres.image.degrade import parse_degradation
from superres.models import get_model
from superres.models.unpaired import HighToLow
from superres.train.losses import FrequencySplit, TVLoss, cycle_loss, identity_loss
from superres.train.recipe import parse_recipe


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Tiny tensors: one thread is fastest on a busy machine."""


# ----------------------------------------------------------------------------- losses


def test_cycle_loss_is_the_round_trip_distance_and_leaves_the_start_alone():
    back = torch.tensor([[0.5, 1.0], [2.0, -1.0]], requires_grad=True)
    start = torch.tensor([[0.0, 1.0], [1.0, 1.0]], requires_grad=True)
    loss = cycle_loss(back, start)  # MSE: (0.25 + 0 + 1 + 4) / 4
    assert loss.item() == pytest.approx(1.3125)
    loss.backward()
    expected = 2 * (back.detach() - start.detach()) / 4
    assert torch.allclose(back.grad, expected)
    assert start.grad is None  # the real image is data
    assert cycle_loss(back, start, "l1").item() == pytest.approx((0.5 + 0 + 1 + 2) / 4)


def test_identity_loss_asks_a_generator_to_keep_its_own_domain():
    gain = torch.tensor(3.0, requires_grad=True)
    image = torch.tensor([1.0, -2.0, 0.5, 0.0])
    loss = identity_loss(lambda x: gain * x, image)  # L1: mean |3x - x| = 2 * mean |x|
    assert loss.item() == pytest.approx(2 * 3.5 / 4)
    loss.backward()  # d/dgain mean |(gain - 1) x| = mean |x| for gain > 1
    assert gain.grad.item() == pytest.approx(3.5 / 4)
    target = torch.tensor([3.0, -6.0, 1.5, 0.0])  # CinCGAN's SR(bicubic LR) against HR
    assert identity_loss(lambda x: gain * x, image, target).item() == 0


def test_total_variation_has_the_known_value_and_gradient():
    image = torch.tensor([[[[0.0, 1.0], [3.0, 6.0]]]], requires_grad=True)
    loss = TVLoss()(image)  # vertical |3|, |5| -> 4; horizontal |1|, |3| -> 2
    assert loss.item() == pytest.approx(6.0)
    loss.backward()  # each pixel: sign of its differences, halved by the means over 2
    assert torch.equal(image.grad, torch.tensor([[[[-1.0, 0.0], [0.0, 1.0]]]]))
    assert TVLoss()(torch.ones(1, 3, 5, 5)).item() == 0


# ----------------------------------------------------------------------------- networks


def test_the_frequency_split_is_a_box_low_pass_and_the_rest():
    image = torch.zeros(1, 1, 7, 7)
    image[0, 0, 3, 3] = 1.0  # an impulse away from the borders
    split = FrequencySplit(5)
    low = split.low(image)
    assert low.shape == image.shape
    assert torch.allclose(low[0, 0, 1:6, 1:6], torch.full((5, 5), 1 / 25))
    assert low[0, 0, 0].abs().sum() == 0  # two rows away: outside every 5x5 box
    assert torch.allclose(split.high(image)[0, 0, 3, 3], torch.tensor(24 / 25))
    # a colour cast (a constant per channel) lives in the low band alone, borders included
    x = torch.rand(2, 3, 9, 9)
    cast = x + torch.tensor([0.2, -0.1, 0.05]).view(1, 3, 1, 1)
    assert torch.allclose(split.high(cast), split.high(x), atol=1e-6)
    assert torch.allclose(split.low(x) + split.high(x), x)
    with pytest.raises(ValueError, match="odd size of 3 or more, not 4"):
        FrequencySplit(4)


def test_the_high_to_low_generator_makes_lr_patches_that_depend_on_the_noise():
    torch.manual_seed(0)
    generator = HighToLow(scale=4, patch=16, noise=8, width=4, blocks=1)
    hr = torch.rand(2, 3, 16, 16)
    noise = generator.sample_noise(2)
    lr = generator(hr, noise)
    assert lr.shape == (2, 3, 4, 4)
    assert torch.equal(lr, generator(hr, noise))
    assert not torch.allclose(lr, generator(hr, generator.sample_noise(2)))
    with pytest.raises(ValueError, match="16x16 HR patches"):
        generator(torch.rand(2, 3, 32, 32), noise)
    with pytest.raises(ValueError, match="noise must be 2 x 8"):
        generator(hr, torch.rand(2, 5))
    with pytest.raises(ValueError, match="scale must be 2, 4 or 8"):
        HighToLow(scale=3, patch=18)


def test_the_cincgan_model_is_g1_then_the_sr_network():
    spec = get_model("cincgan")
    assert spec.supervision == "unpaired" and spec.scales == (4,)
    model = spec.build(4)
    lr = torch.rand(1, 3, 6, 5)
    assert model(lr).shape == (1, 3, 24, 20)
    # G1 starts as the identity (its last conv is zero), so the model starts as its SR part
    assert torch.equal(model.clean(lr), lr)
    assert torch.allclose(model(lr), model.sr(lr))


def test_the_noise_degradation_keeps_the_size_and_is_seeded():
    hr = np.full((16, 16, 3), 128, np.uint8)
    chain = parse_degradation("blur-downsample+noise:sigma=10+jpeg:quality=60")
    first = chain(hr, 4, np.random.default_rng(1))
    assert first.shape == (4, 4, 3) and first.dtype == np.uint8
    assert np.array_equal(first, chain(hr, 4, np.random.default_rng(1)))
    assert first.std() > 2  # the noise is there
    with pytest.raises(ValueError, match="noise sigma must be non-negative"):
        parse_degradation("noise:sigma=-1")


# ----------------------------------------------------------------------------- runs


def _images(folder: Path, count: int, side: int, seed: int) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(seed)
    for i in range(count):
        smooth = rng.random((side // 4, side // 4, 3)) * 255
        pixels = np.kron(smooth, np.ones((4, 4, 1))).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"img{i}.png")
    return folder


@pytest.fixture(scope="module")
def domains(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("domains")
    return {"hr": str(_images(root / "hr", 2, 32, 0)), "lr": str(_images(root / "lr", 2, 16, 1))}


def _recipe(domains: dict[str, str], model: str, unpaired: dict[str, Any]):
    return parse_recipe({
        "model": model, "scale": 4, "seed": 5,
        "data": {"train": [domains["hr"]], "patch": 4, "batch": 2},
        "optimizer": {"lr": 1e-3}, "schedule": {"name": "constant", "steps": 100},
        "validate_on": domains["hr"], "validate_every": 100, "checkpoint_every": 1,
        "unpaired": {"width": 4, "blocks": 1, "noise": 4, **unpaired},
    })


def _same_runs(recipe, tmp_path: Path, stop: int, end: int) -> dict[str, Any]:
    """Train `end` steps straight, and `stop` then resumed to `end`; assert that every
    network, optimiser and discriminator ends identical; return the final state."""
    train(recipe, tmp_path / "straight", max_steps=end, progress=False)
    train(recipe, tmp_path / "split", max_steps=stop, progress=False)
    train(recipe, tmp_path / "split", resume=True, max_steps=end, progress=False)
    a = torch.load(tmp_path / "straight" / "last.pt", weights_only=True)["method"]
    b = torch.load(tmp_path / "split" / "last.pt", weights_only=True)["method"]
    for name, weights in a["networks"].items():
        for key, value in weights.items():
            assert torch.equal(value, b["networks"][name][key]), f"{name}.{key}"
    for name, judge in a["judges"].items():
        for key, value in judge["discriminator"].items():
            assert torch.equal(value, b["judges"][name]["discriminator"][key]), f"{name}.{key}"
        moments = judge["optimizer"]["state"]
        for index, slots in moments.items():
            assert torch.equal(slots["exp_avg"],
                               b["judges"][name]["optimizer"]["state"][index]["exp_avg"])
    for index, slots in a["optimizer"]["state"].items():
        assert torch.equal(slots["exp_avg_sq"], b["optimizer"]["state"][index]["exp_avg_sq"])
    return a


def test_the_two_step_gan_trains_both_steps_and_resumes_exactly(domains, tmp_path):
    h2l = _recipe(domains, "srvgg-s", {"method": "h2l", "lr": [domains["lr"]]})
    first = _same_runs(h2l, tmp_path / "h2l", 1, 2)
    assert set(first["networks"]) == {"h2l"} and set(first["judges"]) == {"lr"}
    degrader = tmp_path / "h2l" / "straight" / "degrader.safetensors"
    assert degrader.is_file()
    l2h = _recipe(domains, "srvgg-s", {"method": "l2h", "degrader": str(degrader)})
    second = _same_runs(l2h, tmp_path / "l2h", 1, 3)
    assert set(second["networks"]) == {"sr"} and set(second["judges"]) == {"hr"}
    log = (tmp_path / "l2h" / "split" / "log.csv").read_text().splitlines()
    assert log[0].split(",")[-3:] == ["loss_pixel", "loss_adversarial", "d_loss_hr"]
    assert len(log) == 4  # a row per step: none lost or repeated by the resume


def test_the_frequency_separated_high_to_low_step_trains_and_resumes_exactly(domains, tmp_path):
    h2l = _recipe(domains, "srvgg-s", {"method": "h2l", "lr": [domains["lr"]],
                                       "frequency_split": 3})
    state = _same_runs(h2l, tmp_path, 1, 2)
    assert set(state["networks"]) == {"h2l"} and set(state["judges"]) == {"lr"}


def test_cincgan_crosses_from_the_inner_cycle_to_the_joint_stage_and_resumes_exactly(
        domains, tmp_path):
    recipe = _recipe(domains, "cincgan", {"method": "cincgan", "lr": [domains["lr"]],
                                          "inner_steps": 2})
    state = _same_runs(recipe, tmp_path, 2, 4)
    assert set(state["networks"]) == {"cincgan", "g2", "g3"}
    assert set(state["judges"]) == {"d1", "d2"}
    rows = (tmp_path / "split" / "log.csv").read_text().splitlines()
    header = rows[0].split(",")
    inner, joint = (dict(zip(header, rows[i].split(","), strict=True)) for i in (2, 3))
    assert inner["loss_pretrain"] and not inner["loss_outer_cycle"]
    assert joint["loss_outer_cycle"] and joint["d_loss_d2"] and not joint["loss_pretrain"]
    # what the run makes upscales like any model
    weights = tmp_path / "split" / "latest.safetensors"
    out = tmp_path / "up.png"
    assert main(["upscale", str(Path(domains["lr"]) / "img0.png"), "-m", "cincgan", "-s", "4",
                 "-w", str(weights), "-o", str(out)]) == 0
    with Image.open(out) as image:
        assert image.size == (64, 64)


def test_unpaired_recipes_refuse_what_they_cannot_train(domains):
    with pytest.raises(ValueError, match="l2h trains on the LR that an h2l run"):
        _recipe(domains, "srvgg-s", {"method": "l2h"})
    with pytest.raises(ValueError, match="cincgan needs the real LR images"):
        _recipe(domains, "cincgan", {"method": "cincgan"})
    with pytest.raises(ValueError, match="h2l's odd low-pass size"):
        _recipe(domains, "srvgg-s", {"method": "h2l", "lr": ["x"], "frequency_split": 4})
    with pytest.raises(ValueError, match="not 5 for cincgan"):
        _recipe(domains, "cincgan", {"method": "cincgan", "lr": ["x"], "frequency_split": 5})
    with pytest.raises(ValueError, match="choose one of h2l, l2h, cincgan"):
        _recipe(domains, "srvgg-s", {"method": "cyclegan", "lr": ["x"]})
    recipe = _recipe(domains, "srvgg-s", {"method": "h2l", "lr": [domains["lr"]],
                                          "weights": {"pixle": 1.0}})
    with pytest.raises(ValueError, match=r"unknown term\(s\) pixle for h2l; known: pixel"):
        train(recipe, Path(domains["hr"]).parent / "bad", progress=False)
    recipe = _recipe(domains, "srvgg-s", {"method": "cincgan", "lr": [domains["lr"]]})
    with pytest.raises(ValueError, match="trains the `cincgan` model"):
        train(recipe, Path(domains["hr"]).parent / "bad2", progress=False)
