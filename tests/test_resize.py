"""imresize reproduces MATLAB's algorithm: kernel, antialiasing, coordinates, borders."""

import numpy as np
import pytest
import torch

from superres.image.resize import KERNELS, contributions, imresize, output_size

# Antialiased bicubic at scale 1/2: h(x) = 0.5 * cubic(0.5 x), sampled at the distances
# +-0.5, +-1.5, +-2.5, +-3.5 from the output pixel centre (derived by hand from the kernel
# 1.5|x|^3 - 2.5|x|^2 + 1 and -0.5|x|^3 + 2.5|x|^2 - 4|x| + 2).
HALF_SCALE_TAPS = [
    -0.01171875, -0.03515625, 0.11328125, 0.43359375,
    0.43359375, 0.11328125, -0.03515625, -0.01171875,
]


def test_interior_weights_of_a_half_scale_bicubic_match_the_kernel():
    indices, weights = contributions(64, 32, 0.5, "cubic")
    row = 10  # far from the borders: output pixel 11 has centre u = 21.5 (1-based)
    np.testing.assert_allclose(weights[row], HALF_SCALE_TAPS, atol=1e-15)
    np.testing.assert_array_equal(indices[row], np.arange(17, 25))  # 0-based 17..24


def test_downscaling_an_impulse_samples_the_stretched_kernel():
    signal = np.zeros((16, 1))
    signal[7] = 1.0  # 1-based position 8
    out = imresize(signal, size=(8, 1))
    # output k has centre 2k - 0.5, so distances to 8 are -2.5, -0.5, 1.5, 3.5 for k = 3..6
    np.testing.assert_allclose(out[2:6, 0], [-0.03515625, 0.43359375, 0.11328125, -0.01171875])


def test_borders_are_mirrored_like_matlab():
    indices, _ = contributions(5, 10, 2.0, "cubic")
    # first output pixel has centre u = 0.75: taps at 1-based -1..2 mirror to 2,1,1,2
    assert indices[0].tolist()[:4] == [1, 0, 0, 1]


@pytest.mark.parametrize("kernel", sorted(KERNELS))
@pytest.mark.parametrize("scale", [0.25, 1 / 3, 0.5, 2, 3, 4])
def test_a_constant_image_stays_constant(kernel, scale):
    image = np.full((24, 18, 3), 123.0)
    np.testing.assert_allclose(imresize(image, scale, kernel=kernel), 123.0, atol=1e-9)


@pytest.mark.parametrize("kernel", ["cubic", "triangle", "lanczos2", "lanczos3", "nearest"])
def test_scale_one_is_the_identity(kernel):
    image = np.random.default_rng(1).random((9, 7))
    np.testing.assert_allclose(imresize(image, 1.0, kernel=kernel), image, atol=1e-12)


def test_bicubic_upscaling_reproduces_a_linear_ramp_away_from_borders():
    ramp = np.tile(np.arange(20.0), (4, 1))
    out = imresize(ramp, size=(4, 60))
    u = (np.arange(1, 61) / 3 + 0.5 * (1 - 1 / 3)) - 1  # 0-based input coordinate
    np.testing.assert_allclose(out[0, 6:-6], u[6:-6], atol=1e-12)


def test_output_size_is_matlab_ceil():
    assert output_size((321, 481), 1 / 3) == (107, 161)
    assert output_size((321, 481), 1 / 2) == (161, 241)
    assert imresize(np.zeros((321, 481)), 1 / 4).shape == (81, 121)


def test_the_smaller_scale_is_applied_first():
    image = np.random.default_rng(2).random((12, 12))
    both = imresize(image, size=(6, 24))
    rows_first = imresize(imresize(image, size=(6, 12)), size=(6, 24))
    np.testing.assert_allclose(both, rows_first, atol=1e-12)


def test_torch_batch_equals_numpy_per_image():
    batch = torch.rand(2, 3, 17, 13, dtype=torch.float64)
    out = imresize(batch, 1 / 3)
    for n in range(2):
        expected = imresize(batch[n].permute(1, 2, 0).numpy(), 1 / 3)
        np.testing.assert_allclose(out[n].permute(1, 2, 0).numpy(), expected, atol=1e-12)


def test_torch_path_is_differentiable():
    x = torch.rand(1, 1, 6, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: imresize(t, 1.5), (x,))


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="unknown kernel"):
        imresize(np.zeros((4, 4)), 2, kernel="mitchell")
    with pytest.raises(ValueError, match="exactly one"):
        imresize(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="positive"):
        imresize(np.zeros((4, 4)), -1)
    with pytest.raises(ValueError, match="floating-point"):
        imresize(torch.zeros(1, 1, 4, 4, dtype=torch.uint8), 2)


@pytest.mark.parametrize("kernel", ["cubic", "bilinear", "lanczos2", "lanczos3", "nearest"])
@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("size", [(3, 4), (7, 5), (16, 11)])
def test_polyphase_upsampling_equals_imresize(kernel, scale, size):
    from superres.nn.upsamplers import Interpolate

    x = torch.rand(2, 3, *size, dtype=torch.float64)
    torch.testing.assert_close(Interpolate(scale, kernel)(x), imresize(x, scale, kernel=kernel))
