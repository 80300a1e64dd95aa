"""BT.601 colour conversion behaves as MATLAB's rgb2ycbcr / ycbcr2rgb."""

import numpy as np
import pytest
import torch

from superres.image.color import rgb_to_y, rgb_to_ycbcr, ycbcr_to_rgb


def test_white_and_black_map_to_studio_swing_limits():
    white = rgb_to_ycbcr(np.ones((1, 1, 3))) * 255
    black = rgb_to_ycbcr(np.zeros((1, 1, 3))) * 255
    np.testing.assert_allclose(white[0, 0], [235, 128, 128], atol=1e-9)
    np.testing.assert_allclose(black[0, 0], [16, 128, 128], atol=1e-9)


def test_pure_red_matches_matlab_rgb2ycbcr():
    # MATLAB: rgb2ycbcr([1 0 0]) = [0.2568 0.3959 0.9392] (x255: 81.481, 90.203, 240)
    red = rgb_to_ycbcr(np.array([[[1.0, 0.0, 0.0]]])) * 255
    np.testing.assert_allclose(red[0, 0], [16 + 65.481, 128 - 37.797, 128 + 112.0], atol=1e-9)


def test_numpy_round_trip_is_exact():
    rgb = np.random.default_rng(0).random((7, 5, 3))
    np.testing.assert_allclose(ycbcr_to_rgb(rgb_to_ycbcr(rgb)), rgb, atol=1e-12)


def test_torch_matches_numpy_and_round_trips():
    rgb = torch.rand(2, 3, 6, 4, dtype=torch.float64)
    ycbcr = rgb_to_ycbcr(rgb)
    expected = rgb_to_ycbcr(rgb.permute(0, 2, 3, 1).numpy())
    np.testing.assert_allclose(ycbcr.permute(0, 2, 3, 1).numpy(), expected, atol=1e-12)
    torch.testing.assert_close(ycbcr_to_rgb(ycbcr), rgb)


def test_luma_keeps_a_channel_axis_and_equals_the_first_ycbcr_channel():
    rgb = torch.rand(1, 3, 4, 4)
    assert rgb_to_y(rgb).shape == (1, 1, 4, 4)
    torch.testing.assert_close(rgb_to_y(rgb), rgb_to_ycbcr(rgb)[:, :1])


def test_gradients_flow_through_the_conversion():
    rgb = torch.rand(1, 3, 2, 2, requires_grad=True)
    rgb_to_y(rgb).sum().backward()
    # dY/dR summed over 4 pixels = 4 * 65.481 / 255
    assert rgb.grad[0, 0].sum().item() == pytest.approx(4 * 65.481 / 255, rel=1e-6)


def test_wrong_channel_count_is_an_error():
    with pytest.raises(ValueError, match="3 channels"):
        rgb_to_ycbcr(np.zeros((4, 4, 4)))
