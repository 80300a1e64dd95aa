"""The training objective as weighted terms (a recipe's `losses`): each term trains a tiny model,
the sum is the weighted terms' sum, bad terms are one-line errors, the `gan` stage is one use
of it, and a run with a discriminator and a learned D_down resumes exactly."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from images import write_smooth_images
from superres.image.resize import imresize
from superres.models import get_model
from superres.nn.vgg import find_vgg_weights
from superres.train.losses import TVLoss
from superres.train.objective import (
    BicubicDownsampler,
    ConvDownsampler,
    CycleTerm,
    Objective,
    PixelTerm,
    TVTerm,
    parse_losses,
)
from superres.train.recipe import parse_recipe
from superres.train.trainer import train
from superres.weights import WeightsNotFoundError

# Every test here trains or runs networks: one thread each, or the two cores thrash.
pytestmark = pytest.mark.usefixtures("one_thread")

PIXEL_AND_D = [{"type": "pixel", "criterion": "l1", "weight": 1e-2},
               {"type": "adversarial", "discriminator": "srgan", "weight": 5e-3}]


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    return write_smooth_images(tmp_path_factory.mktemp("hr"), 2, (10, 12), (72, 64))


@pytest.fixture
def vgg19():
    """Skip unless the (truncated) VGG19 weights are in $SUPERRES_WEIGHTS."""
    if not os.environ.get("SUPERRES_WEIGHTS", "").strip():
        pytest.skip("SUPERRES_WEIGHTS is not set to the folder of pretrained weights")
    try:
        find_vgg_weights()
    except WeightsNotFoundError as missing:
        pytest.skip(str(missing))


def _recipe(folder: Path, rgb: bool = False, **values):
    """A tiny run: FSRCNN-s x2 (Y) on 16-pixel HR patches, or SRVGG-s x2 (RGB) on 32."""
    model = {"model": "srvgg-s", "scale": 2, "data": {"train": [str(folder)], "patch": 16,
                                                       "batch": 2}} if rgb else {
             "model": "fsrcnn-s", "scale": 2, "data": {"train": [str(folder)], "patch": 8,
                                                        "batch": 2}}
    return parse_recipe({
        **model, "seed": 2, "optimizer": {"lr": 1e-3},
        "schedule": {"name": "constant", "steps": 100},
        "validate_on": str(folder), "validate_every": 2, "checkpoint_every": 2, **values,
    })


def _initial_weights(recipe) -> dict[str, torch.Tensor]:
    torch.manual_seed(recipe.seed)  # as the trainer builds its model
    return get_model(recipe.model).build(recipe.scale).state_dict()


def _log(run: Path) -> list[dict[str, str]]:
    with open(run / "log.csv", newline="") as f:
        return list(csv.DictReader(f))


# ----------------------------------------------------------------------------- each term


@pytest.mark.parametrize("term, rgb", [
    ({"type": "pixel", "criterion": "charbonnier"}, False),
    ({"type": "tv", "power": 2, "weight": 0.1}, False),
    ({"type": "cycle", "network": "conv"}, False),
    ({"type": "cycle", "network": "bicubic", "criterion": "mse"}, False),
    ({"type": "adversarial", "discriminator": "srgan", "gan_loss": "hinge"}, True),
    ({"type": "perceptual", "layers": {"relu2_2": 1.0}}, True),
    ({"type": "texture", "layers": ["relu1_1", "relu2_1"], "weight": 10.0}, True),
])
def test_each_term_alone_trains_a_tiny_model(photos, tmp_path, request, term, rgb):
    if term["type"] in ("perceptual", "texture"):
        request.getfixturevalue("vgg19")
    recipe = _recipe(photos, rgb, losses=[term])
    before = _initial_weights(recipe)
    train(recipe, tmp_path / "run", max_steps=2, progress=False)
    after = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert any(not torch.equal(before[k], after["model"][k]) for k in before)
    (row,) = _log(tmp_path / "run")
    assert float(row["loss"]) == pytest.approx(float(row["loss"]))  # finite, not NaN
    assert list(row)[-1] == "d_loss"  # one term: no per-term columns
    assert (after["adversarial"] is not None) == (term["type"] == "adversarial")
    assert (after["cycle"] is not None) == (term.get("network") == "conv")


# ----------------------------------------------------------------------------- the sum


def test_the_loss_is_the_sum_of_the_weighted_terms():
    torch.manual_seed(0)
    terms = parse_losses([{"type": "pixel", "criterion": "mse", "weight": 0.5},
                          {"type": "tv", "weight": 0.25},
                          {"type": "cycle", "network": "bicubic", "weight": 2.0},
                          {"type": "pixel", "criterion": "l1", "weight": 3.0}])
    objective = Objective(terms, scale=2, hr_patch=16, channels=3, base_lr=1e-3, log_terms=True)
    sr, hr, lr = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16), torch.rand(2, 3, 8, 8)
    expected = {"pixel": 0.5 * F.mse_loss(sr, hr), "tv": 0.25 * TVLoss()(sr),
                "cycle": 2.0 * F.l1_loss(imresize(sr, 0.5), lr), "pixel_2": 3 * F.l1_loss(sr, hr)}
    values = objective.values(sr, hr, lr)
    assert list(values) == list(expected)
    for label, value in expected.items():
        torch.testing.assert_close(values[label], value)
    total = objective.loss(sr, hr, lr, rate=1e-3)
    torch.testing.assert_close(total, sum(expected.values()))
    row = objective.log_row()
    assert row["d_loss"] == ""
    assert sum(row[f"loss_{label}"] for label in expected) == pytest.approx(total.item())


def test_the_logged_terms_of_a_gan_run_add_up_to_its_loss(photos, tmp_path):
    recipe = _recipe(photos, rgb=True, losses=[*PIXEL_AND_D, {"type": "tv", "weight": 1e-3}],
                     checkpoint_every=1)
    train(recipe, tmp_path / "run", max_steps=2, progress=False)
    rows = _log(tmp_path / "run")
    assert list(rows[0])[-4:] == ["d_loss", "loss_adversarial", "loss_pixel", "loss_tv"]
    for row in rows:
        terms = [float(row[f"loss_{label}"]) for label in ("adversarial", "pixel", "tv")]
        assert sum(terms) == pytest.approx(float(row["loss"]), rel=1e-6)
        assert float(row["d_loss"]) > 0


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize("losses, message", [
    ({"type": "pixel"}, r"losses must be a list"),
    ([{"type": "ssim"}], r"losses\[0\]\.type is 'ssim'; choose one of pixel, perceptual, "
                         r"texture, tv, adversarial, cycle"),
    ([{"type": "pixel"}, {"type": "tv", "wieght": 1}],
     r"losses\[1\] \(tv\): unknown key\(s\) wieght; known: power, type, weight"),
    ([{"type": "pixel", "criterion": "l3"}],
     r"losses\[0\]\.criterion is 'l3'; choose one of l1, mse, charbonnier"),
    ([{"type": "perceptual", "layers": {"relu9_9": 1}}], r"losses\[0\]\.layers is 'relu9_9'"),
    ([{"type": "perceptual", "criterion": "l1", "weight": -1}],
     r"losses\[0\]\.weight must be a number of 0 or more, not -1"),
    ([{"type": "adversarial", "gan_loss": "wgan"}],
     r"gan_loss is 'wgan'; choose one of vanilla, lsgan, hinge, ragan"),
    ([{"type": "adversarial", "discriminator": "patchgan"}], r"choose one of srgan, esrgan"),
    ([{"type": "adversarial", "betas": [0.9]}], r"betas must be two numbers in \[0, 1\)"),
    ([{"type": "adversarial"}, {"type": "adversarial"}], r"a run trains one discriminator"),
    ([{"type": "cycle", "network": "lanczos"}], r"network is 'lanczos'; choose one of conv"),
    ([{"type": "texture", "patch": 0}], r"patch must be a positive whole number or null"),
    (["pixel"], r"losses\[0\] must be a mapping"),
])
def test_a_bad_term_is_a_one_line_error_naming_it(photos, losses, message):
    with pytest.raises(ValueError, match=message) as err:
        _recipe(photos, losses=losses)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("values, message", [
    ({"gan": {"discriminator": "srgan"}}, r"gan and losses are both set"),
    ({"loss": "l1"}, r"loss is 'l1' and losses is set: give the criterion in a pixel term"),
    ({"loss_border": 2}, r"loss_border is for pixel terms alone"),
])
def test_options_that_cannot_go_with_the_terms_are_refused(photos, values, message):
    with pytest.raises(ValueError, match=message):
        _recipe(photos, losses=[{"type": "pixel"}, {"type": "tv"}], **values)


def test_a_cycle_term_needs_one_scale_and_the_lr_input():
    with pytest.raises(ValueError, match=r"cycle term downscales SR by `scale`"):
        parse_recipe({"model": "vdsr", "scale": 2, "scales": [2, 3],
                      "losses": [{"type": "cycle"}]})
    objective = Objective([CycleTerm(network="bicubic")], scale=2, hr_patch=16, channels=1,
                          base_lr=1e-3)
    hr = torch.rand(1, 1, 16, 16)
    with pytest.raises(ValueError, match=r"input is \(16, 16\) for SR of \(16, 16\)"):
        objective.loss(hr, hr, hr, rate=1e-3)


def test_terms_that_need_rgb_and_a_y_model_are_a_clear_error(photos, tmp_path):
    recipe = _recipe(photos, losses=PIXEL_AND_D)
    with pytest.raises(ValueError, match=r"adversarial term judges RGB images.*1 channel"):
        train(recipe, tmp_path / "run", max_steps=1, progress=False)


def test_a_bad_gan_stage_is_an_error_when_the_recipe_is_read(photos):
    with pytest.raises(ValueError, match=r"gan's terms\[\d\]\.gan_loss is 'wgan'"):
        _recipe(photos, gan={"gan_loss": "wgan"})


# ----------------------------------------------------------------------------- old recipes


@pytest.mark.parametrize("perceptual", [False, True])
def test_a_gan_recipe_and_its_losses_give_the_same_weights(photos, tmp_path, request,
                                                          perceptual):
    layers = {"relu2_2": 0.5, "relu3_1": 0.5}
    stage = {"discriminator": "srgan", "perceptual_weight": 0.0}
    terms = PIXEL_AND_D[::-1]  # another order: the adversarial term is summed first anyway
    if perceptual:  # as srvgg_x4_demo_gan and its `losses` form in docs/losses.md
        request.getfixturevalue("vgg19")
        stage = {"discriminator": "srgan", "perceptual_layers": layers}
        terms = [*PIXEL_AND_D, {"type": "perceptual", "layers": layers, "criterion": "l1"}]
    gan = _recipe(photos, rgb=True, loss="l1", gan=stage)
    losses = _recipe(photos, rgb=True, losses=terms)
    train(gan, tmp_path / "gan", max_steps=3, progress=False)
    train(losses, tmp_path / "losses", max_steps=3, progress=False)
    a = torch.load(tmp_path / "gan" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "losses" / "last.pt", weights_only=True)
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    for key, value in a["adversarial"]["discriminator"].items():
        assert torch.equal(value, b["adversarial"]["discriminator"][key]), key
    logs = [_log(tmp_path / run) for run in ("gan", "losses")]
    assert [r["loss"] for r in logs[0]] == [r["loss"] for r in logs[1]]
    assert [r["d_loss"] for r in logs[0]] == [r["d_loss"] for r in logs[1]]
    assert list(logs[0][0])[-1] == "d_loss"  # the GAN stage's log keeps its columns


def test_multi_supervised_models_take_a_lone_pixel_term_and_refuse_others(photos, tmp_path):
    def lapsrn(losses):
        return _recipe(photos, model="lapsrn", scale=4, losses=losses,
                       data={"train": [str(photos)], "patch": 8, "batch": 1})

    train(lapsrn([{"type": "pixel", "criterion": "charbonnier"}]), tmp_path / "one",
          max_steps=1, progress=False)
    with pytest.raises(ValueError, match=r"lapsrn trains through its own multi-output loss.*"
                                         r"one pixel term, not pixel, tv"):
        train(lapsrn([{"type": "pixel"}, {"type": "tv"}]), tmp_path / "two", max_steps=1,
              progress=False)


def test_a_checkpoint_without_the_objective_state_it_needs_is_refused():
    Objective([PixelTerm()], scale=2, hr_patch=16, channels=1,
              base_lr=1e-3).load_state_dict({"adversarial": None})  # a pre-`losses` run's
    learned = Objective([CycleTerm()], scale=2, hr_patch=16, channels=1, base_lr=1e-3)
    with pytest.raises(ValueError, match="no cycle state"):
        learned.load_state_dict({"adversarial": None})


# ----------------------------------------------------------------------------- resume, D_down


def test_a_run_with_d_and_a_learned_d_down_resumes_exactly(photos, tmp_path):
    recipe = _recipe(photos, rgb=True,
                     losses=[*PIXEL_AND_D, {"type": "cycle", "weight": 0.1}])
    train(recipe, tmp_path / "straight", max_steps=4, progress=False)
    train(recipe, tmp_path / "split", max_steps=2, progress=False)
    train(recipe, tmp_path / "split", resume=True, max_steps=4, progress=False)
    a = torch.load(tmp_path / "straight" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "split" / "last.pt", weights_only=True)
    for part in ("model", ("adversarial", "discriminator"), "cycle"):
        left, right = (a[part], b[part]) if isinstance(part, str) else (
            a[part[0]][part[1]], b[part[0]][part[1]])
        for key, value in left.items():
            assert torch.equal(value, right[key]), (part, key)
    assert any(not torch.equal(v, torch.zeros_like(v)) for v in a["cycle"].values())
    assert len(a["optimizer"]["param_groups"]) == 2  # D_down trains in G's optimiser
    logs = [_log(tmp_path / run) for run in ("straight", "split")]
    for log in logs:
        for row in log:
            del row["seconds"]
    assert logs[0] == logs[1] and "loss_cycle" in logs[0][0]


def test_d_down_starts_as_the_box_filter_and_bicubic_is_matlabs():
    x = torch.rand(2, 3, 12, 12)
    torch.testing.assert_close(ConvDownsampler(3, 3)(x), F.avg_pool2d(x, 3))
    torch.testing.assert_close(BicubicDownsampler(3, 2)(x), imresize(x, 0.5))


def test_term_defaults_follow_their_papers():
    (adversarial,) = parse_losses([{"type": "adversarial"}])
    assert (adversarial.gan_loss, adversarial.weight, adversarial.discriminator,
            adversarial.lr, adversarial.betas) == ("ragan", 5e-3, "esrgan", 1e-4, (0.9, 0.999))
    (texture,) = parse_losses([{"type": "texture"}])
    assert list(texture.layers) == ["relu1_1", "relu2_1", "relu3_1"] and texture.patch == 16
    assert TVTerm().power == 1 and PixelTerm().criterion == "l1"
