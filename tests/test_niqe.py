"""NIQE (Mittal et al. 2013): its estimators recover known distributions, it scores blurred
and noisy images as less natural, and evaluation reports it beside the VGG feature distance."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from images import write_smooth_images
from superres.cli import EXIT_MISSING, EXIT_OK, EXIT_USAGE, main
from superres.data import dataset_images
from superres.evaluation import evaluate_dataset
from superres.image.io import read_image
from superres.image.resize import imresize
from superres.inference.upscaler import load
from superres.metrics.niqe import (
    MODEL_FILE,
    OFFICIAL_URL,
    NIQEModel,
    NIQEScore,
    fit_aggd,
    fit_niqe_model,
    load_niqe_model,
    mscn,
    niqe,
)
from superres.metrics.perceptual import VGGFeatureDistance
from superres.weights import WeightsNotFoundError, weights_root


def _aggd_samples(shape: float, left: float, right: float, n: int, seed: int) -> np.ndarray:
    """Draws from an AGGD: |x| / beta ~ Gamma(1/shape)^(1/shape), each side with probability
    proportional to its scale."""
    rng = np.random.default_rng(seed)
    magnitude = rng.gamma(1 / shape, 1.0, n) ** (1 / shape)
    on_left = rng.random(n) < left / (left + right)
    return np.where(on_left, -left * magnitude, right * magnitude)


# Heavy tails (small shapes) make the second moments, hence the scales, noisier: at shape 0.5
# and 200,000 draws their spread over seeds is about 3 %.
@pytest.mark.parametrize("shape, scale, tolerance",
                         [(0.5, 1.0, 0.1), (1.0, 2.0, 0.03), (2.0, 0.7, 0.03), (3.0, 1.5, 0.03)])
def test_a_symmetric_sample_gives_back_its_generalised_gaussian(shape, scale, tolerance):
    alpha, left, right = fit_aggd(_aggd_samples(shape, scale, scale, 200_000, seed=1))
    assert alpha[0] == pytest.approx(shape, rel=0.03)
    assert left[0] == pytest.approx(scale, rel=tolerance)
    assert right[0] == pytest.approx(scale, rel=tolerance)


def test_an_asymmetric_sample_gives_back_both_scales():
    alpha, left, right = fit_aggd(_aggd_samples(0.8, 0.5, 1.5, 200_000, seed=2))
    assert (alpha[0], left[0], right[0]) == pytest.approx((0.8, 0.5, 1.5), rel=0.03)
    assert math.isnan(fit_aggd(np.ones((1, 50)))[0][0])  # no left side to fit


def test_mscn_of_a_constant_image_is_zero():
    coefficients, sigma = mscn(np.full((40, 30), 117.0))
    np.testing.assert_allclose(coefficients, 0.0, atol=1e-9)
    np.testing.assert_allclose(sigma, 0.0, atol=1e-5)


def _pink(side: int, seed: int) -> np.ndarray:
    """A 1/f-spectrum image in 0..255: the power law of natural images' spectra."""
    rng = np.random.default_rng(seed)
    frequency = np.hypot(*np.meshgrid(np.fft.fftfreq(side), np.fft.fftfreq(side)))
    spectrum = rng.normal(size=(side, side)) + 1j * rng.normal(size=(side, side))
    image = np.real(np.fft.ifft2(spectrum / np.maximum(frequency, 1 / side)))
    return np.clip((image - image.mean()) / image.std() * 40 + 128, 0, 255)


def _blurred(image: np.ndarray) -> np.ndarray:
    return np.clip(imresize(imresize(image.astype(np.float64), 0.5), 2.0), 0, 255)


def _noisy(image: np.ndarray, sigma: float) -> np.ndarray:
    noise = np.random.default_rng(5).normal(0, sigma, image.shape)
    return np.clip(image + noise, 0, 255)


def test_niqe_rises_when_a_natural_like_image_is_blurred_or_noised():
    model = fit_niqe_model([_pink(192, seed) for seed in range(4)])
    for seed in (10, 11):
        sharp = _pink(192, seed)
        clean = niqe(sharp, model)
        assert niqe(_blurred(sharp), model) > clean + 10
        assert niqe(_noisy(sharp, 8), model) > clean + 2


def test_niqe_rises_when_a_photo_is_blurred_or_noised(require_dataset):
    pristine = [read_image(p).pixels for p in dataset_images(require_dataset("BSD100"))[1][:16]]
    model = fit_niqe_model(pristine)
    for name in ("monarch", "lenna"):
        photo = read_image(require_dataset("Set14") / f"{name}.png").pixels
        clean = niqe(photo, model)
        assert niqe(_blurred(photo), model) > clean + 2
        assert niqe(_noisy(photo.astype(np.float64), 15), model) > clean + 2


def test_niqe_of_baboon_is_the_authors_matlab_value(require_dataset):
    """MATLAB R2021a's NIQE of Set14's baboon cut to its first 492 columns, on Y without a
    border crop, is 5.72957338 (BasicSR's calibration) with the authors' pristine model."""
    if not (weights_root() / MODEL_FILE).is_file():
        pytest.skip(f"the authors' pristine model {MODEL_FILE} is not in the weights folder "
                    f"({weights_root()}); see docs/perceptual.md")
    baboon = read_image(require_dataset("Set14") / "baboon.png").pixels[:, :492]
    assert niqe(baboon) == pytest.approx(5.72957338, abs=1e-3)  # the default model file


def test_a_missing_pristine_model_says_where_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("SUPERRES_WEIGHTS", str(tmp_path))
    with pytest.raises(WeightsNotFoundError, match=r"niqe_pristine\.npz") as error:
        niqe(_pink(96, 0))
    assert OFFICIAL_URL in str(error.value) and "fit_niqe_model" in str(error.value)


def test_a_model_file_round_trips_in_the_authors_names(tmp_path):
    model = fit_niqe_model([_pink(192, seed) for seed in range(3)])
    model.save(tmp_path / "model.npz")
    assert set(np.load(tmp_path / "model.npz").files) == {"mu_prisparam", "cov_prisparam"}
    again = load_niqe_model(tmp_path / "model.npz")
    np.testing.assert_array_equal(again.cov, model.cov)
    image = _pink(96, 9)
    assert niqe(image, tmp_path / "model.npz") == niqe(image, model)
    np.savez(tmp_path / "other.npz", weights=np.zeros(3))
    with pytest.raises(ValueError, match="not a NIQE model"):
        load_niqe_model(tmp_path / "other.npz")
    with pytest.raises(ValueError, match=r"\(36,\) mean"):
        NIQEModel(np.zeros(18), np.eye(18))


def test_bad_input_is_refused_with_the_reason():
    model = fit_niqe_model([_pink(192, seed) for seed in range(3)])
    with pytest.raises(ValueError, match="at least one 96x96 block"):
        niqe(np.zeros((80, 200)), model)
    with pytest.raises(ValueError, match="H x W"):
        niqe(np.zeros((100, 100, 4)), model)
    with pytest.raises(ValueError, match="at least two sharp"):
        fit_niqe_model([np.zeros((50, 50))])


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("hr")
    return write_smooth_images(folder, 2, (20, 22), (220, 200))


def test_evaluation_reports_perceptual_metrics_beside_psnr(photos, one_thread):
    model = fit_niqe_model(photos)
    metrics = [VGGFeatureDistance(pretrained=False), NIQEScore(model)]
    result = evaluate_dataset(load("bicubic", 2), str(photos), progress=False, metrics=metrics)
    report = result.to_json(per_image=True)
    assert {"psnr", "ssim", "vgg_distance", "niqe"} <= report.keys()
    assert report["vgg_distance"] > 0 and math.isfinite(report["niqe"])
    per_image = [image["niqe"] for image in report["per_image"]]
    assert report["niqe"] == pytest.approx(np.mean(per_image))
    assert "extra" not in report and "extra" not in report["per_image"][0]


def test_eval_command_adds_niqe_and_says_when_the_model_is_missing(
    photos, tmp_path, monkeypatch, capsys
):
    fit_niqe_model(photos).save(tmp_path / "pristine.npz")
    args = ["eval", "-m", "bicubic", "-s", "2", "-d", str(photos), "-q"]
    assert main([*args, "--json", "--niqe", str(tmp_path / "pristine.npz")]) == EXIT_OK
    result = json.loads(capsys.readouterr().out)["results"][0]
    assert result["images"] == 2 and result["niqe"] > 0
    monkeypatch.setenv("SUPERRES_WEIGHTS", str(tmp_path / "empty"))
    assert main([*args, "--niqe"]) == EXIT_MISSING
    assert OFFICIAL_URL in capsys.readouterr().err
    np.savez(tmp_path / "bad.npz", mean=np.zeros(36))
    assert main([*args, "--niqe", str(tmp_path / "bad.npz")]) == EXIT_USAGE
