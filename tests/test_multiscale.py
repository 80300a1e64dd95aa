"""Multi-scale training (VDSR), scale augmentation and bias learning rates (LapSRN)."""

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import superres
from images import write_smooth_images
from superres.image.degrade import bicubic_lr
from superres.nn.upsamplers import Interpolate
from superres.train.optim import lr_multiplier
from superres.train.patches import PatchSampler, TrainingImage, load_images
from superres.train.recipe import parse_recipe
from superres.train.trainer import train


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_thread):
    """Tiny models and images: one thread is fastest."""


@pytest.fixture(scope="module")
def noise_folder(tmp_path_factory) -> Path:
    """Random RGB images: any patch of them is found at one place only."""
    folder = tmp_path_factory.mktemp("noise")
    rng = np.random.default_rng(0)
    for i, (height, width) in enumerate([(50, 61), (47, 40), (64, 57)]):
        pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i}.png")
    return folder


@pytest.fixture(scope="module")
def smooth_folder(tmp_path_factory) -> Path:
    """Smooth random images (learnable structure) standing in for a training set."""
    folder = tmp_path_factory.mktemp("smooth")
    return write_smooth_images(folder, 3, (8, 10), (60, 48))


def _recipe(folder: Path, **overrides):
    values = {
        "model": "srcnn", "scale": 2, "scales": [2, 3], "seed": 1, "loss": "mse",
        "data": {"train": [str(folder)], "patch": 6, "batch": 4},
        "optimizer": {"name": "adam", "lr": 3e-3},
        "schedule": {"name": "constant", "steps": 100},
        "validate_on": str(folder), "validate_every": 1000, "checkpoint_every": 20,
    }
    values.update(overrides)
    return parse_recipe(values)


def _locate(patch: np.ndarray, images: list[TrainingImage]) -> tuple[TrainingImage, int, int]:
    """The image and place where `patch` (P x P x C) lies: in noise, it matches once only."""
    size = patch.shape[0]
    hits = []
    for image in images:
        windows = np.lib.stride_tricks.sliding_window_view(image.hr, (size, size), axis=(0, 1))
        found = np.argwhere((windows == patch.transpose(2, 0, 1)).all(axis=(2, 3, 4)))
        hits += [(image, int(top), int(left)) for top, left in found]
    assert len(hits) == 1
    return hits[0]


def test_each_training_scale_has_the_exact_bicubic_lr_of_the_modcropped_hr(noise_folder):
    images = load_images([str(noise_folder)], (2, 3, 4), "y", progress=False)
    pixels = np.asarray(Image.open(noise_folder / "1.png"))  # 47 x 40
    image = images[1]
    assert image.hr.shape == (47, 40, 1)
    for scale, size in ((2, (23, 20)), (3, (15, 13)), (4, (11, 10))):
        assert image.lr[scale].shape == (*size, 1)
        expected = superres.image.color.rgb_to_y(bicubic_lr(pixels, scale) / 255.0)
        np.testing.assert_allclose(image.lr[scale], expected, atol=1e-6)


def test_multi_scale_batches_mix_the_asked_scales_as_interpolated_hr_size_inputs(noise_folder):
    images = load_images([str(noise_folder)], (2, 3, 4), "y", progress=False)
    # HR patches of 14 px: not a multiple of 3 or 4, so LR and HR grids need not align.
    sampler = PatchSampler(images, 2, 7, 8, augment=False, seed=3, scales=(2, 3, 4))
    seen = set()
    for _ in range(3):
        batch = sampler.sample()
        assert batch.inputs.shape == batch.hr.shape == (8, 1, 14, 14)
        seen |= set(batch.scales)
        for lr_patch, hr_patch, scale in zip(batch.inputs, batch.hr, batch.scales, strict=True):
            image, top, left = _locate(hr_patch.numpy().transpose(1, 2, 0), images)
            whole = torch.from_numpy(image.lr[scale].transpose(2, 0, 1))[None]
            interpolated = Interpolate(scale)(whole)[0, :, top : top + 14, left : left + 14]
            torch.testing.assert_close(lr_patch, interpolated, atol=1e-5, rtol=0)
    assert seen == {2, 3, 4}


def test_multi_scale_batches_are_the_same_under_the_same_seed_and_after_a_resume(noise_folder):
    images = load_images([str(noise_folder)], (2, 3), "y", progress=False)

    def sampler(seed: int) -> PatchSampler:
        return PatchSampler(images, 2, 6, 4, augment=True, seed=seed, scales=(2, 3),
                            factors=(0.5, 1.0))

    first, second, other = sampler(5), sampler(5), sampler(6)
    a, b, c = first.sample(), second.sample(), other.sample()
    assert a.scales == b.scales and torch.equal(a.inputs, b.inputs) and torch.equal(a.hr, b.hr)
    assert not torch.equal(a.hr, c.hr)
    resumed = sampler(0)
    resumed.load_state_dict(first.state_dict())
    assert torch.equal(first.sample().inputs, resumed.sample().inputs)


def _ramp(height: int, width: int, scale: int) -> TrainingImage:
    """A horizontal ramp rising one grey level per pixel: a patch's slope is 1 / factor."""
    pixels = np.tile(np.arange(width, dtype=np.uint8), (height, 1))[..., None]
    lr = bicubic_lr(pixels, scale).astype(np.float32) / 255
    return TrainingImage(pixels.astype(np.float32) / 255, {scale: lr})


def _slopes(x: torch.Tensor) -> np.ndarray:
    """Grey levels per pixel along the rows of each patch of N x 1 x H x W."""
    return ((x[:, 0, :, -1] - x[:, 0, :, 0]).mean(dim=1) * 255 / (x.shape[-1] - 1)).numpy()


def test_scale_augmentation_downscales_each_image_by_a_factor_within_the_bounds():
    sampler = PatchSampler([_ramp(120, 200, 2)], 2, 8, 64, augment=False, seed=0,
                           factors=(0.5, 0.7, 1.0))
    batch = sampler.sample()
    slopes = _slopes(batch.hr)
    assert batch.hr.shape == (64, 1, 16, 16) and batch.inputs.shape == (64, 1, 8, 8)
    # HR is downscaled by 0.5, 0.7 or 1.0: ramps of 2, 1/0.7 or 1 levels per pixel.
    for factor in (0.5, 0.7, 1.0):
        assert np.isclose(slopes, 1 / factor, atol=0.07).any()
    assert np.isclose(slopes[:, None], [2, 1 / 0.7, 1], atol=0.07).any(axis=1).all()
    # Each LR is the bicubic x2 downscale of its HR: on a ramp, the mean of each pixel pair,
    # rounded to 8-bit levels.
    pairs = (batch.hr[..., 0::2] + batch.hr[..., 1::2]) / 2
    torch.testing.assert_close(batch.inputs, pairs[:, :, 0::2], atol=0.51 / 255, rtol=0)


def test_a_factor_too_small_for_an_image_is_raised_to_the_least_that_fits():
    # 16 px HR patches need a 32 + 4 px downscaled window: a 60 px high image allows 0.6.
    sampler = PatchSampler([_ramp(60, 200, 2)], 2, 8, 16, augment=False, seed=0,
                           factors=(0.5,))
    np.testing.assert_allclose(_slopes(sampler.sample().hr), 1 / 0.6, atol=0.07)
    unscaled = PatchSampler([_ramp(30, 200, 2)], 2, 8, 16, augment=False, seed=0,
                            factors=(0.5,))
    np.testing.assert_allclose(_slopes(unscaled.sample().hr), 1, atol=0.07)


def test_bias_patterns_multiply_the_prefix_multiplier():
    multipliers = {"body": 0.5, "body.4": 0.1, "*.bias": 0.1}
    assert lr_multiplier(multipliers, "body.4.weight") == pytest.approx(0.1)
    assert lr_multiplier(multipliers, "body.4.bias") == pytest.approx(0.01)
    assert lr_multiplier(multipliers, "body.0.bias") == pytest.approx(0.05)
    assert lr_multiplier(multipliers, "head.weight") == 1.0


def test_the_bias_rate_multiplier_reaches_the_optimiser_groups(smooth_folder, tmp_path):
    recipe = _recipe(smooth_folder, model="lapsrn", scales=[], checkpoint_every=1,
                     data={"train": [str(smooth_folder)], "patch": 6, "batch": 2},
                     optimizer={"name": "sgd", "lr": 1e-3, "lr_multipliers": {"*.bias": 0.1}})
    train(recipe, tmp_path / "run", max_steps=1, progress=False)
    groups = torch.load(tmp_path / "run" / "last.pt", weights_only=True)["optimizer"][
        "param_groups"]
    names = [name for name, _ in superres.build("lapsrn", 2).named_parameters()]
    by_rate = {group["multiplier"]: (group["lr"], len(group["params"])) for group in groups}
    assert by_rate[0.1] == (pytest.approx(1e-4), sum(n.endswith(".bias") for n in names))
    assert by_rate[1.0] == (pytest.approx(1e-3), sum(not n.endswith(".bias") for n in names))


def test_a_multi_scale_recipe_for_a_post_upsampling_model_is_refused(smooth_folder, tmp_path):
    with pytest.raises(ValueError, match=r"pre-upsampling model \(srcnn, .*vdsr.*espcn is post"):
        train(_recipe(smooth_folder, model="espcn"), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_scales_and_factors_outside_their_range_are_errors():
    with pytest.raises(ValueError, match=r"include scale 4"):
        parse_recipe({"model": "vdsr", "scale": 4, "scales": [2, 3]})
    with pytest.raises(ValueError, match=r"distinct"):
        parse_recipe({"model": "vdsr", "scale": 2, "scales": [2, 2, 3]})
    with pytest.raises(ValueError, match=r"scale_augment \[0.5, 1.5\]"):
        parse_recipe({"model": "lapsrn", "scale": 2, "data": {"scale_augment": [0.5, 1.5]}})


def test_a_few_multi_scale_steps_lower_the_loss_and_the_weights_serve_every_scale(
    smooth_folder, tmp_path
):
    result = train(_recipe(smooth_folder), tmp_path / "run", max_steps=80, progress=False)
    with open(tmp_path / "run" / "log.csv") as log:
        rows = list(csv.DictReader(log))
    losses = [float(row["loss"]) for row in rows]
    assert len(losses) == 4 and losses[-1] < 0.5 * losses[0]
    assert rows[-1]["val_psnr"] and rows[-1]["val_psnr_x3"] and result.best_step == 80
    weights = tmp_path / "run" / "best.safetensors"
    for scale in (2, 3):
        upscaled = superres.load("srcnn", scale, weights=weights).upscale(
            np.zeros((10, 12, 3), np.uint8))
        assert upscaled.shape == (10 * scale, 12 * scale, 3)
