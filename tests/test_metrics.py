"""PSNR/SSIM follow the standard protocol, checked on cases worked out by hand."""

import math

import numpy as np
import pytest

from superres.image.degrade import bicubic_lr, modcrop
from superres.metrics.protocol import (
    filter_valid as _filter_valid,
)
from superres.metrics.protocol import (
    gaussian_window as _gaussian_window,
)
from superres.metrics.protocol import (
    psnr,
    score,
    ssim,
    to_y,
)


def test_psnr_of_an_error_of_one_grey_level_is_48_13_db():
    assert psnr(np.ones((8, 8)), np.zeros((8, 8))) == pytest.approx(20 * math.log10(255))


def test_psnr_of_identical_images_is_infinite():
    image = np.random.default_rng(0).random((8, 8)) * 255
    assert psnr(image, image) == math.inf


def test_ssim_of_identical_images_is_one():
    image = np.random.default_rng(0).random((32, 32)) * 255
    assert ssim(image, image) == pytest.approx(1.0, abs=1e-12)


def test_ssim_of_two_flat_images_is_the_luminance_term():
    c1 = (0.01 * 255) ** 2
    expected = (2 * 100 * 110 + c1) / (100**2 + 110**2 + c1)
    assert ssim(np.full((16, 16), 100.0), np.full((16, 16), 110.0)) == pytest.approx(expected)


def test_ssim_window_is_matlab_fspecial_gaussian_11_1_5():
    g = _gaussian_window()
    window = np.outer(g, g)
    x = np.arange(-5, 6)
    direct = np.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / (2 * 1.5**2))
    np.testing.assert_allclose(window, direct / direct.sum(), atol=1e-15)


def test_separable_valid_filter_equals_brute_force():
    rng = np.random.default_rng(3)
    image = rng.random((20, 17))
    g = _gaussian_window()
    window = np.outer(g, g)
    brute = np.array([[np.sum(image[i:i + 11, j:j + 11] * window) for j in range(7)]
                      for i in range(10)])
    np.testing.assert_allclose(_filter_valid(image, g), brute, atol=1e-12)


def test_y_of_a_gray_image_is_its_raw_intensity():
    gray = np.arange(256, dtype=np.uint8).reshape(16, 16)
    np.testing.assert_array_equal(to_y(gray), gray.astype(float))
    np.testing.assert_array_equal(to_y(gray[..., None]), gray.astype(float))


def test_y_of_rgb_white_is_235():
    assert to_y(np.full((2, 2, 3), 255, np.uint8))[0, 0] == pytest.approx(235.0)


def test_score_modcrops_hr_and_shaves_the_border():
    rng = np.random.default_rng(4)
    hr = rng.integers(0, 256, (35, 37, 3), dtype=np.uint8)
    sr = modcrop(hr, 4).copy()
    sr[:4] = 0  # damage only the shaved border
    assert score(sr, hr, 4).psnr == math.inf
    sr[10, 10] = 255 - sr[10, 10]
    assert score(sr, hr, 4).psnr < 100


def test_score_rejects_unquantised_or_mismatched_images():
    hr = np.zeros((24, 24, 3), np.uint8)
    with pytest.raises(TypeError, match="uint8"):
        score(hr.astype(np.float32), hr, 2)
    with pytest.raises(ValueError, match="modcropped HR size"):
        score(hr[:20], hr, 2)


def test_rgb_psnr_pools_the_channels():
    hr = np.zeros((20, 20, 3), np.uint8)
    sr = hr.copy()
    sr[..., 0] = 3  # error 3 in one channel out of three: MSE 3
    assert score(sr, hr, 2, channel="rgb").psnr == pytest.approx(10 * math.log10(255**2 / 3))


def test_bicubic_lr_is_rounded_uint8_of_the_modcropped_image():
    hr = np.random.default_rng(5).integers(0, 256, (31, 30, 3), dtype=np.uint8)
    lr = bicubic_lr(hr, 3)
    assert lr.dtype == np.uint8 and lr.shape == (10, 10, 3)
