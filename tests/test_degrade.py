"""Degradations behave as their models say: kernel moments, noise statistics, JPEG, the chain."""

import math

import numpy as np
import pytest

from superres.image.degrade import (
    SECOND_STAGE,
    DegradationChain,
    DegradationStage,
    _bessel_j1,
    add_gaussian_noise,
    add_poisson_noise,
    blur,
    covariance_matrix,
    gaussian_kernel,
    generalized_gaussian_kernel,
    jpeg,
    motion_line_kernel,
    motion_trajectory_kernel,
    plateau_kernel,
    random_kernel,
    realistic_lr,
    sinc_kernel,
    validation_lr,
)


def moments(kernel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (x, y) and covariance of a kernel seen as a distribution over its taps."""
    size_y, size_x = kernel.shape
    y, x = np.meshgrid(np.arange(size_y) - (size_y - 1) / 2, np.arange(size_x) - (size_x - 1) / 2,
                       indexing="ij")
    mean = np.array([np.sum(kernel * x), np.sum(kernel * y)])
    dx, dy = x - mean[0], y - mean[1]
    cov = np.array([[np.sum(kernel * dx * dx), np.sum(kernel * dx * dy)],
                    [np.sum(kernel * dx * dy), np.sum(kernel * dy * dy)]])
    return mean, cov


def textured(size: int = 64, seed: int = 0) -> np.ndarray:
    """A smooth random texture in [0, 1], like a natural image patch."""
    noise = np.random.default_rng(seed).random((size, size, 3))
    return np.clip(blur(noise, gaussian_kernel(7, 1.2)) * 2 - 0.5, 0, 1)


@pytest.mark.parametrize(("sigma_x", "sigma_y", "theta"),
                         [(1.0, 1.0, 0.0), (3.0, 1.0, 0.0), (2.5, 0.8, 0.7), (1.5, 3.0, -2.0)])
def test_a_gaussian_kernel_sums_to_one_and_has_the_requested_covariance(sigma_x, sigma_y, theta):
    kernel = gaussian_kernel(41, sigma_x, sigma_y, theta)
    mean, cov = moments(kernel)
    assert kernel.sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(mean, 0, atol=1e-12)
    np.testing.assert_allclose(cov, covariance_matrix(sigma_x, sigma_y, theta), atol=1e-3)


def test_an_isotropic_kernel_has_equal_variances_and_no_correlation():
    _, cov = moments(gaussian_kernel(31, 2.0))
    np.testing.assert_allclose(cov, 4.0 * np.eye(2), atol=1e-4)


def test_generalized_gaussian_with_beta_one_is_the_gaussian():
    np.testing.assert_allclose(generalized_gaussian_kernel(21, 2.0, 1.0, 0.3, 1.0),
                               gaussian_kernel(21, 2.0, 1.0, 0.3), atol=1e-15)


def test_a_plateau_kernel_is_flatter_on_top_than_the_gaussian_of_the_same_sigma():
    plateau, gauss = plateau_kernel(21, 2.0, 2.0, 0.0, 2.0), gaussian_kernel(21, 2.0)
    assert plateau.sum() == pytest.approx(1.0)
    assert plateau[10, 11] / plateau[10, 10] > gauss[10, 11] / gauss[10, 10]


def test_even_kernel_sizes_are_refused_because_they_would_shift_the_image():
    with pytest.raises(ValueError, match="odd"):
        gaussian_kernel(20, 2.0)


def test_bessel_j1_matches_tabulated_values():
    np.testing.assert_allclose(_bessel_j1(np.array([1.0, 10.0, 40.0])),
                               [0.44005058574, 0.04347274617, 0.12603832], atol=1e-8)


def test_a_sinc_kernel_with_cutoff_pi_over_3_passes_low_and_stops_high_frequencies():
    kernel = sinc_kernel(21, np.pi / 3)
    response = np.abs(np.fft.fft2(kernel, (256, 256)))
    assert kernel.sum() == pytest.approx(1.0)
    assert response[0, 10] == pytest.approx(1.0, abs=0.1)  # 0.25 rad/px: passed
    assert response[0, 80] < 0.1  # 2 rad/px: stopped


@pytest.mark.parametrize("angle", [0.0, 0.4, 1.2, -2.5])
def test_a_line_kernel_spreads_length_squared_over_12_along_its_angle(angle):
    length = 15.0
    kernel = motion_line_kernel(length, angle)
    mean, cov = moments(kernel)
    variances, axes = np.linalg.eigh(cov)
    along = axes[:, 1]
    assert kernel.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(mean, 0, atol=1e-9)
    # bilinear splatting adds at most 1/4 px² per axis
    assert variances[1] == pytest.approx(length**2 / 12, abs=0.5)
    assert variances[0] < 0.5
    assert abs(along @ [math.cos(angle), math.sin(angle)]) == pytest.approx(1.0, abs=1e-4)


def test_a_shake_kernel_is_a_centred_distribution_inside_its_window():
    for seed in range(5):
        kernel = motion_trajectory_kernel(25, np.random.default_rng(seed))
        mean, _ = moments(kernel)
        assert kernel.shape == (25, 25)
        assert kernel.min() >= 0
        assert kernel.sum() == pytest.approx(1.0)
        np.testing.assert_allclose(mean, 0, atol=1e-9)


def test_blurring_keeps_a_constant_image_and_matches_direct_convolution():
    np.testing.assert_allclose(blur(np.full((16, 16, 3), 0.3), gaussian_kernel(9, 2.0)), 0.3)
    image = np.random.default_rng(0).random((12, 10))
    kernel = motion_line_kernel(3.0, 0.5, size=5)
    padded = np.pad(image, 2, mode="reflect")
    direct = np.array([[np.sum(padded[i:i + 5, j:j + 5] * kernel[::-1, ::-1]) for j in range(10)]
                       for i in range(12)])
    np.testing.assert_allclose(blur(image, kernel), direct, atol=1e-12)


@pytest.mark.parametrize("gray", [False, True])
def test_gaussian_noise_has_the_requested_standard_deviation(gray):
    image = np.full((256, 256, 3), 0.5)
    noisy = add_gaussian_noise(image, 0.05, np.random.default_rng(0), gray=gray)
    noise = noisy - image
    assert noise.std() == pytest.approx(0.05, rel=0.02)
    assert abs(noise.mean()) < 0.001
    channels_agree = np.allclose(noise[..., 0], noise[..., 2])
    assert channels_agree == gray


@pytest.mark.parametrize("gray", [False, True])
def test_poisson_noise_variance_is_proportional_to_intensity(gray):
    # each row one of 256 grey levels: Real-ESRGAN's rule then counts 256 photons at white
    levels = np.arange(256) / 255
    image = np.repeat(np.repeat(levels[:, None, None], 1024, axis=1), 3, axis=2)
    noise = add_poisson_noise(image, 2.0, np.random.default_rng(1), gray=gray) - image
    variance = noise[..., 1].var(axis=1)
    slope = np.sum(variance * levels) / np.sum(levels**2)
    assert slope == pytest.approx(2.0**2 / 256, rel=0.03)
    assert np.abs(noise.mean(axis=(1, 2))).max() < 0.02
    bright, dark = variance[200:].mean(), variance[20:60].mean()
    assert bright / dark == pytest.approx(levels[200:].mean() / levels[20:60].mean(), rel=0.1)


def test_lower_jpeg_quality_gives_a_larger_error():
    image = textured(96)
    errors = [np.mean((jpeg(image, q) - image) ** 2) for q in (10, 30, 50, 70, 90)]
    assert errors == sorted(errors, reverse=True)
    assert jpeg(image, 50).shape == image.shape
    assert jpeg(image[..., 0], 50).shape == image.shape[:2]


def test_random_kernels_of_every_kind_sum_to_one_with_a_listed_size():
    rng = np.random.default_rng(0)
    stage = DegradationStage(sinc_prob=0.3)
    for _ in range(40):
        kernel = random_kernel(stage, rng)
        assert kernel.shape[0] in stage.kernel_sizes
        assert kernel.sum() == pytest.approx(1.0)


def test_the_chain_gives_uint8_lr_of_the_target_size_from_uint8_hr():
    hr = (textured(64) * 255).astype(np.uint8)
    lr = realistic_lr(hr, np.random.default_rng(0))
    assert lr.shape == (16, 16, 3)
    assert lr.dtype == np.uint8


def test_the_chain_on_a_float_image_stays_float_on_the_8_bit_grid():
    lr = realistic_lr(textured(64)[..., 0], np.random.default_rng(0), DegradationChain(scale=2))
    assert lr.shape == (32, 32)
    assert lr.dtype == np.float64
    np.testing.assert_allclose(lr * 255, np.round(lr * 255), atol=1e-9)
    assert lr.min() >= 0 and lr.max() <= 1


def test_the_chain_is_deterministic_under_a_seed_and_varies_across_seeds():
    hr = (textured(64) * 255).astype(np.uint8)
    first = realistic_lr(hr, np.random.default_rng(7))
    again = realistic_lr(hr, np.random.default_rng(7))
    others = [realistic_lr(hr, np.random.default_rng(seed)) for seed in (8, 9)]
    np.testing.assert_array_equal(first, again)
    assert all(not np.array_equal(first, other) for other in others)


def test_validation_lr_depends_only_on_seed_and_image_index():
    hr = (textured(64) * 255).astype(np.uint8)
    np.testing.assert_array_equal(validation_lr(hr, 3), validation_lr(hr, 3))
    assert not np.array_equal(validation_lr(hr, 3), validation_lr(hr, 4))
    assert not np.array_equal(validation_lr(hr, 3), validation_lr(hr, 3, seed=1))


def test_the_default_chain_uses_real_esrgan_ranges():
    chain = DegradationChain()
    assert chain.scale == 4
    assert chain.first.blur_sigma == (0.2, 3.0)
    assert chain.first.noise_range == (1.0, 30.0)
    assert chain.second.blur_sigma == (0.2, 1.5)
    assert chain.second.resize_prob == (0.3, 0.4, 0.3)
    assert chain.final_sinc_prob == 0.8


def test_a_recipe_mapping_builds_the_chain_and_a_misspelt_key_is_an_error():
    chain = DegradationChain.from_dict({"scale": 2, "second": {"noise_range": [1, 10]}})
    assert chain.scale == 2
    assert chain.second.noise_range == (1, 10)
    assert chain.second.blur_sigma == SECOND_STAGE.blur_sigma
    with pytest.raises(TypeError, match="nosie_range"):
        DegradationChain.from_dict({"first": {"nosie_range": [1, 10]}})
    with pytest.raises(ValueError, match="sum to 1"):
        DegradationStage(resize_prob=(0.5, 0.5, 0.5))
