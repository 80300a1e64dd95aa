"""Named degradations: exact BD/DN, chains, one-line errors, per-patch training with shards,
and reproducible evaluation on a degradation."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import superres
from images import write_smooth_images
from superres.cli import EXIT_OK, EXIT_USAGE, main
from superres.evaluation import evaluate_dataset
from superres.image.degrade import (
    DEGRADATIONS,
    Degradation,
    bicubic_lr,
    jpeg,
    parse_degradation,
)
from superres.train.patches import PatchSampler, load_images
from superres.train.recipe import parse_recipe
from superres.train.trainer import train

RANDOM = ("downsample-noise", "realesrgan")


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("hr")
    return write_smooth_images(folder, 3, (8, 10), (60, 48))


def _hr(shape: tuple[int, ...] = (31, 38, 3), seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _rng(seed: int = 5) -> np.random.Generator:
    return np.random.default_rng(seed)


@pytest.mark.parametrize("name", list(DEGRADATIONS))
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_every_degradation_gives_uint8_lr_of_the_modcropped_size_deterministically(name, scale):
    degradation = parse_degradation(name)
    hr = _hr()
    lr = degradation(hr, scale, _rng())
    assert lr.dtype == np.uint8 and lr.shape == (31 // scale, 38 // scale, 3)
    assert np.array_equal(lr, degradation(hr, scale, _rng()))
    if name in RANDOM:
        assert not np.array_equal(lr, degradation(hr, scale, _rng(6)))
    as_float = degradation(hr / 255, scale, _rng())  # float in, float on the 8-bit grid out
    assert as_float.dtype == np.float64 and np.array_equal(as_float * 255, lr)


def test_a_grey_image_keeps_its_one_channel():
    for name in DEGRADATIONS:
        assert parse_degradation(name)(_hr((24, 24, 1)), 2, _rng()).shape == (12, 12, 1)


def test_bicubic_is_exactly_bicubic_lr_and_the_default():
    hr = _hr()
    assert Degradation().is_bicubic and parse_degradation("bicubic") == Degradation()
    assert np.array_equal(Degradation()(hr, 3, _rng()), bicubic_lr(hr, 3))


def _matlab_bd(hr: np.ndarray, scale: int, sigma: float, size: int) -> np.ndarray:
    """RDN's imresize_BD written out: imfilter(fspecial('gaussian'), 'replicate') on uint8,
    then nearest decimation (odd scales) or rows s/2:s:end-s/2 (even ones), 1-based, on the
    HR modcropped as RDN's Prepare_TestData_HR_LR.m does."""
    hr = hr[: len(hr) - len(hr) % scale, : hr.shape[1] - hr.shape[1] % scale]
    x = np.arange(size) - (size - 1) / 2
    kernel = np.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / (2 * sigma**2))
    kernel /= kernel.sum()
    centre = (size - 1) // 2  # MATLAB's floor((size + 1) / 2), 0-based
    padded = np.pad(hr.astype(np.float64), ((centre, size - 1 - centre),) * 2 + ((0, 0),),
                    mode="edge")
    height, width = hr.shape[:2]
    blurred = sum(kernel[i, j] * padded[i : i + height, j : j + width]
                  for i in range(size) for j in range(size))
    blurred = np.clip(np.round(blurred), 0, 255).astype(np.uint8)
    first = (scale - 1) // 2 if scale % 2 else scale // 2 - 1
    return blurred[first::scale, first::scale]


@pytest.mark.parametrize(("scale", "sigma", "size"), [(3, 1.6, 7), (4, 1.6, 12), (2, 1.2, 10),
                                                      (3, 2.0, 13)])
def test_blur_downsample_is_rdns_imresize_bd(scale, sigma, size):
    hr = _hr((30, 36, 3))
    lr = parse_degradation({"name": "blur-downsample", "sigma": sigma})(hr, scale, _rng())
    assert np.array_equal(lr, _matlab_bd(hr, scale, sigma, size))


def test_downsample_noise_is_bicubic_plus_gaussian_noise_of_sigma():
    hr = _hr()
    lr = parse_degradation("downsample-noise:sigma=12")(hr, 2, _rng(3))
    clean = bicubic_lr(hr, 2)
    noisy = clean + 12 * _rng(3).standard_normal(clean.shape)
    assert np.array_equal(lr, np.clip(np.round(noisy), 0, 255).astype(np.uint8))
    flat = parse_degradation("downsample-noise")(np.full((200, 200, 3), 128, np.uint8), 2, _rng())
    assert flat.astype(float).std() == pytest.approx(30, rel=0.05)  # RDN's level


def test_jpeg_alone_is_bicubic_then_jpeg_and_in_a_chain_compresses_the_lr():
    hr = _hr()
    alone = parse_degradation("jpeg:quality=30")(hr, 2, _rng())
    assert np.array_equal(alone / 255, jpeg(bicubic_lr(hr, 2) / 255, 30))
    bd = parse_degradation("blur-downsample")(hr, 3, _rng())
    chained = parse_degradation(["blur-downsample", {"name": "jpeg", "quality": 30}])
    assert np.array_equal(chained(hr, 3, _rng()) / 255, jpeg(bd / 255, 30))
    assert chained == parse_degradation("blur-downsample+jpeg:quality=30")


def test_a_spec_reads_back_to_the_same_degradation():
    for value in ["jpeg", "downsample-noise:sigma=10", ["blur-downsample", "jpeg:quality=20"],
                  {"name": "realesrgan", "final_sinc_prob": 0.5,
                   "second": {"blur_prob": 0.2, "noise_range": [1, 5]}}]:
        degradation = parse_degradation(value)
        spec = json.loads(json.dumps(degradation.spec()))
        assert parse_degradation(spec) == degradation
    assert parse_degradation("blur-downsample:sigma=1.6").spec() == "blur-downsample"


@pytest.mark.parametrize(("value", "message"), [
    ("gaussian", "unknown degradation 'gaussian'; known: bicubic, blur-downsample"),
    ("jpeg:qualty=30", "unknown parameter(s) qualty of jpeg; known: quality"),
    ({"quality": 30}, "a mapping needs a name"),
    ("jpeg:quality=high", "degradation.quality must be an integer, not 'high'"),
    ("jpeg:quality=0", "quality must be in 1..100"),
    ("jpeg:30", "write NAME:key=value"),
    ("blur-downsample:sigma=-1", "sigma must be positive"),
    (["bicubic", "downsample-noise"], "downscales once, but bicubic, downsample-noise"),
    ([], "empty chain"),
    ({"name": "realesrgan", "first": {"blur": 1}}, "degradation.first: unknown key(s) blur"),
    ({"name": "realesrgan", "first": {"blur_prob": 2}}, "blur_prob must be a probability"),
    ({"name": "bicubic", "sigma": 1}, "of bicubic; known: none"),
    (3, "expected a name"),
])
def test_a_bad_spec_is_a_one_line_error_naming_what_is_known(value, message):
    with pytest.raises(ValueError) as error:
        parse_degradation(value)
    assert message in str(error.value) and "\n" not in str(error.value)


def _recipe(folder: Path, **overrides):
    values = {
        "model": "fsrcnn-s", "scale": 2, "seed": 1, "loss": "mse",
        "data": {"train": [str(folder)], "patch": 8, "batch": 4},
        "optimizer": {"name": "adam", "lr": 3e-3},
        "schedule": {"name": "constant", "steps": 200},
        "validate_on": str(folder), "validate_every": 100, "checkpoint_every": 100,
    }
    values.update(overrides)
    return parse_recipe(values)


def test_a_recipe_checks_its_degradation_and_names_the_key(image_folder):
    with pytest.raises(ValueError, match=r"^degradation\[1\]: unknown degradation 'blur'"):
        _recipe(image_folder, degradation=["bicubic", "blur"])
    with pytest.raises(ValueError, match=r"scales and data\.scale_augment make bicubic LR only"):
        _recipe(image_folder, model="vdsr", scales=[2, 3], degradation="downsample-noise")
    recipe = _recipe(image_folder, degradation=["blur-downsample", {"name": "jpeg"}])
    assert parse_degradation(recipe.degradation).steps[1].quality == 75


@pytest.mark.parametrize("name", list(DEGRADATIONS))
def test_a_tiny_run_trains_on_each_degradation(image_folder, tmp_path, name):
    result = train(_recipe(image_folder, degradation=name), tmp_path / "run", max_steps=2,
                   progress=False)
    assert result.steps == 2 and np.isfinite(result.best_psnr)


def _sampler(images, degradation, shard=(0, 1), seed=4, batch=6):
    return PatchSampler(images, 2, 6, batch, True, seed, degradation=degradation, shard=shard)


@pytest.mark.parametrize("degradation", ["bicubic", "realesrgan"])
def test_the_shards_of_two_samplers_make_up_the_batch_and_resume_exactly(image_folder,
                                                                          degradation):
    images = load_images([str(image_folder)], (2,), "y", progress=False,
                         degradation=degradation)
    whole, halves = _sampler(images, degradation), [_sampler(images, degradation, (r, 2))
                                                    for r in (0, 1)]
    for _ in range(2):
        batch = whole.sample()
        parts = [half.sample() for half in halves]
        assert all(len(part.scales) == 3 for part in parts)
        assert torch.equal(batch.inputs, torch.cat([part.inputs for part in parts]))
        assert torch.equal(batch.hr, torch.cat([part.hr for part in parts]))
    state = halves[1].state_dict()
    expected = [halves[1].next_batch() for _ in range(2)]
    resumed = _sampler(images, degradation, (1, 2), seed=99)
    resumed.load_state_dict(state)
    for inputs, hr in expected:
        got = resumed.next_batch()
        assert torch.equal(got[0], inputs) and torch.equal(got[1], hr)


def test_a_shard_must_divide_the_batch(image_folder):
    images = load_images([str(image_folder)], (2,), "y", progress=False)
    with pytest.raises(ValueError, match="multiple of the world size"):
        _sampler(images, "bicubic", (0, 4))


def test_a_patch_of_a_deterministic_degradation_is_that_of_the_whole_image(image_folder):
    images = load_images([str(image_folder)], (2,), "rgb", progress=False,
                         degradation="blur-downsample")
    sampler = PatchSampler(images, 2, 6, 16, False, 0, degradation="blur-downsample")
    whole = [parse_degradation("blur-downsample")(image.pixels, 2, _rng()) / 255
             for image in images]
    batch = sampler.sample()
    for lr, hr in zip(batch.inputs.numpy(), batch.hr.numpy(), strict=True):
        hr, lr = hr.transpose(1, 2, 0), lr.transpose(1, 2, 0)
        found = [full[top : top + 6, left : left + 6]
                 for image, full in zip(images, whole, strict=True)
                 for top in range(full.shape[0] - 5) for left in range(full.shape[1] - 5)
                 if np.array_equal(image.hr[2 * top : 2 * top + 12, 2 * left : 2 * left + 12],
                                   hr)]
        assert np.allclose(found[0], lr, atol=1e-6)


def test_per_patch_degradations_refuse_multi_scale(image_folder):
    images = load_images([str(image_folder)], (2, 3), "y", progress=False,
                         degradation="jpeg")
    with pytest.raises(ValueError, match="bicubic LR only"):
        PatchSampler(images, 2, 6, 4, False, 0, scales=(2, 3), degradation="jpeg")


def test_evaluation_on_a_degradation_is_reproducible_and_differs_from_bicubic(image_folder):
    upscaler = superres.load("bicubic", 2)
    runs = [evaluate_dataset(upscaler, str(image_folder), progress=False,
                             degradation="downsample-noise:sigma=10") for _ in range(2)]
    bicubic = evaluate_dataset(upscaler, str(image_folder), progress=False)
    assert runs[0].psnr == runs[1].psnr and runs[0].psnr < bicubic.psnr - 0.5
    named = evaluate_dataset(upscaler, str(image_folder), progress=False, degradation="bicubic")
    assert named.psnr == bicubic.psnr


def test_eval_command_takes_a_degradation_and_reports_it(image_folder, capsys):
    argv = ["eval", "-m", "bicubic", "-s", "2", "-d", str(image_folder), "--json", "-q"]
    assert main(argv) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["degradation"] == "bicubic"
    assert main([*argv, "--degradation", "{name: jpeg, quality: 20}"]) == EXIT_OK
    report = json.loads(capsys.readouterr().out)
    assert report["degradation"] == {"name": "jpeg", "quality": 20}
    assert set(report["results"][0]) == {"dataset", "images", "psnr", "ssim", "seconds",
                                          "channel"}
    assert main([*argv, "--degradation", "blur-downsample:sigma=oops"]) == EXIT_USAGE
    assert "--degradation.sigma must be a number" in capsys.readouterr().err
