"""Multi-frame SR: the imaging model, registration accuracy, and each solver's gain over bicubic."""

import numpy as np
import pytest

from superres.classic.burst import (
    METHODS,
    _Cameras,
    _fourier_warp,
    iterative_back_projection,
    phase_correlation,
    register,
    register_burst,
    shift_and_add,
    synthetic_burst,
    upscale_burst,
    warp,
)
from superres.image.degrade import bicubic_lr, to_uint
from superres.image.io import read_image
from superres.image.resize import imresize
from superres.image.sample import sample_image
from superres.metrics.protocol import psnr, score, shave, to_y

SCALE = 2


@pytest.fixture(scope="module")
def chart() -> np.ndarray:
    """128 x 128 uint8 gray crop of the built-in test chart: lines, zone plate, text."""
    return to_uint(to_y(np.asarray(sample_image())))[:, :128]


@pytest.fixture(scope="module")
def chart_burst(chart) -> tuple:
    """An 8-frame x2 burst of the chart (64 x 64 frames) and its registered motion."""
    burst = synthetic_burst(chart, SCALE, 8, np.random.default_rng(1))
    return burst, register_burst(burst.frames)


def gray_psnr(sr: np.ndarray, hr: np.ndarray) -> float:
    """PSNR of the quantised SR image on gray levels, `scale` px shaved, as the protocol does."""
    return psnr(shave(to_uint(sr).astype(float), SCALE), shave(hr.astype(float), SCALE))


def test_the_camera_of_a_still_frame_is_matlab_bicubic_downscaling():
    hr = np.random.default_rng(0).random((24, 20))
    camera = _Cameras((12, 10), SCALE, np.zeros((1, 3)), psf_sigma=0.0)
    np.testing.assert_allclose(camera.forward(hr)[0], imresize(hr, 1 / SCALE), atol=1e-12)


@pytest.mark.parametrize("rotation", [0.0, 0.03])
def test_the_imaging_model_adjoint_is_its_transpose(rotation):
    rng = np.random.default_rng(0)
    motion = np.array([[0.0, 0.0, 0.0], [0.3, -1.7, rotation], [-0.4, 0.2, -rotation]])
    cameras = _Cameras((10, 12), SCALE, motion, psf_sigma=0.8)
    hr, lr = rng.random((20, 24)), rng.random((3, 10, 12))
    assert np.sum(cameras.forward(hr) * lr) == pytest.approx(np.sum(hr * cameras.adjoint(lr)))


def test_frame_zero_of_a_still_burst_is_the_standard_bi_lr_image(chart):
    colour = np.asarray(sample_image())[:64, :96]
    for hr in (chart, colour):
        burst = synthetic_burst(hr, SCALE, 3, np.random.default_rng(0))
        np.testing.assert_array_equal(burst.frames[0], bicubic_lr(hr, SCALE))
        assert burst.frames.shape == (3, *bicubic_lr(hr, SCALE).shape)
        np.testing.assert_array_equal(burst.motion[0], 0)


def test_the_simulator_and_the_model_warp_the_same_way(chart):
    smooth = imresize(imresize(chart, 0.25), 4)  # band-limited: both interpolators agree
    motion = np.array([1.3, -0.6, np.deg2rad(1.5)])
    exact = _fourier_warp(smooth[..., None], motion)[..., 0]
    assert np.abs(exact - warp(smooth, motion))[8:-8, 8:-8].max() < 0.5  # grey levels


def test_phase_correlation_finds_a_whole_pixel_shift():
    image = np.random.default_rng(0).random((64, 64))
    moved = np.roll(image, (-3, 5), axis=(0, 1))  # moved(p) = image(p + (3, -5))
    shift, _ = phase_correlation(image, moved)
    np.testing.assert_allclose(shift, [3, -5], atol=0.01)


def test_registration_recovers_sub_pixel_shifts_of_burst_frames_to_0_05_px(chart_burst):
    burst, motion = chart_burst
    errors = np.abs(motion - burst.motion)
    assert errors[:, :2].max() < 0.05
    np.testing.assert_array_equal(motion[:, 2], 0)


def test_registration_recovers_rotations_to_0_05_degrees_and_shifts_to_0_05_px(chart):
    burst = synthetic_burst(chart, SCALE, 4, np.random.default_rng(2), max_rotation_deg=2.0)
    motion = register_burst(burst.frames, rotation=True)
    errors = np.abs(motion - burst.motion)
    assert np.abs(burst.motion[1:, 2]).min() > np.deg2rad(0.2)  # the rotations are real
    assert np.rad2deg(errors[:, 2]).max() < 0.05
    assert errors[:, :2].max() < 0.05


def test_registration_of_a_frame_with_itself_is_zero(chart):
    np.testing.assert_allclose(register(chart.astype(float), chart.astype(float), rotation=True),
                               0, atol=1e-6)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_each_method_beats_single_frame_bicubic_on_an_8_frame_x2_burst(method, chart, chart_burst):
    burst, motion = chart_burst
    bicubic = gray_psnr(imresize(burst.frames[0], SCALE), chart)
    sr = METHODS[method](burst.frames, motion, SCALE)
    assert sr.shape == chart.shape
    assert gray_psnr(sr, chart) > bicubic + 0.5


@pytest.mark.parametrize("method", [shift_and_add, iterative_back_projection])
def test_psnr_grows_from_1_to_8_frames(method, chart, chart_burst):
    burst, motion = chart_burst
    gains = [gray_psnr(method(burst.frames[:n], motion[:n], SCALE), chart) for n in (1, 2, 4, 8)]
    assert gains == sorted(gains)
    assert gains[-1] > gains[0] + 1.0


@pytest.mark.parametrize("method", ["shift-and-add", "ibp", "map-btv", "pocs"])
def test_the_spatial_methods_handle_small_rotations(method, chart):
    burst = synthetic_burst(chart[32:96, 32:96], SCALE, 8, np.random.default_rng(3),
                            max_rotation_deg=1.0)
    bicubic = gray_psnr(imresize(burst.frames[0], SCALE), chart[32:96, 32:96])
    sr = upscale_burst(burst.frames, SCALE, method, rotation=True)
    assert gray_psnr(sr, chart[32:96, 32:96]) > bicubic + 0.5


def test_the_frequency_domain_method_refuses_rotations(chart_burst):
    burst, motion = chart_burst
    with pytest.raises(ValueError, match="pure translations"):
        METHODS["frequency"](burst.frames, motion + np.array([0, 0, 0.01]), SCALE)


def test_upscale_burst_keeps_colour_and_the_frames_units():
    hr = np.asarray(sample_image())[:64, 96:160]
    burst = synthetic_burst(hr, SCALE, 4, np.random.default_rng(0))
    sr = upscale_burst(burst.frames, SCALE, "ibp")
    assert sr.shape == hr.shape
    assert sr.dtype == np.float64
    assert 0.5 * 255 < sr.max() < 1.5 * 255  # grey levels, like uint8 frames
    as_float = upscale_burst(burst.frames / 255, SCALE, "ibp")
    np.testing.assert_allclose(as_float * 255, sr, atol=1e-6)


def test_float_frames_outside_0_1_are_refused_with_a_hint(chart_burst):
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        upscale_burst(chart_burst[0].frames.astype(float), SCALE, "ibp")


def test_upscale_burst_names_the_methods_when_given_an_unknown_one(chart_burst):
    with pytest.raises(ValueError, match="map-btv"):
        upscale_burst(chart_burst[0].frames, SCALE, "sparse-coding")


def test_on_a_set5_crop_every_method_beats_bicubic_by_1_db(require_dataset):
    folder = require_dataset("Set5")
    hr = read_image(folder / "butterfly.png").pixels[64:160, 64:160]
    burst = synthetic_burst(hr, SCALE, 8, np.random.default_rng(0))
    motion = register_burst(burst.frames)
    bicubic = score(to_uint(imresize(burst.frames[0], SCALE)), hr, SCALE).psnr
    for method in METHODS:
        sr = to_uint(upscale_burst(burst.frames, SCALE, method, motion=motion))
        assert score(sr, hr, SCALE).psnr > bicubic + 1.0, method


def test_burst_command_writes_the_reconstruction(tmp_path, capsys):
    from PIL import Image

    from superres.classic.burst import synthetic_burst
    from superres.cli import EXIT_OK, EXIT_USAGE, main
    from superres.image.sample import sample_image

    hr = np.asarray(sample_image(64, 48), dtype=np.float64)
    burst = synthetic_burst(hr, 2, frames=4, rng=np.random.default_rng(0))
    paths = []
    for i, frame in enumerate(burst.frames):
        paths.append(tmp_path / f"f{i}.png")
        Image.fromarray(np.clip(np.round(frame), 0, 255).astype(np.uint8)).save(paths[-1])
    out = tmp_path / "sr.png"
    args = ["burst", *map(str, paths), "-s", "2", "-m", "shift-and-add", "-o", str(out)]
    assert main(args) == EXIT_OK
    assert Image.open(out).size == (64, 48) and "4 frames" in capsys.readouterr().out
    assert main(["burst", str(paths[0]), "-o", str(out)]) == EXIT_USAGE
