"""Tiled inference equals whole-image inference; self-ensemble is the mean of 8 transforms."""

import numpy as np
import pytest
import torch

import superres
from superres.infer import SelfEnsemble, Tiled, _profile
from superres.nn.interpolation import Interpolate


@pytest.mark.parametrize(
    ("name", "scale"), [("srcnn", 3), ("fsrcnn", 2), ("fsrcnn", 3), ("espcn", 4), ("bicubic", 3)]
)
def test_tiled_equals_untiled_at_sizes_that_are_not_tile_multiples(name, scale):
    torch.manual_seed(0)
    model = superres.build(name, scale).eval()
    x = torch.rand(1, 1, 53, 38)
    tiled = Tiled(model, scale, tile=24)
    assert len(list(tiled.tiles(53, 38))) > 4
    with torch.no_grad():
        np.testing.assert_allclose(tiled(x).numpy(), model(x).numpy(), atol=1e-4)


def test_blend_weights_ramp_between_zeroed_margins():
    weights = _profile(12, 1, pad=2, blend=3, first=False, last=False)
    assert weights[:2].sum() == 0 and weights[-2:].sum() == 0
    assert torch.all(weights[2:5] > 0) and torch.all(weights[2:5] < 1)
    assert torch.equal(weights[5:7], torch.ones(2))


def test_overlapping_ramps_of_neighbours_sum_to_one():
    # two neighbouring tiles overlap by 2 * pad + blend: their ramps are complementary
    a = _profile(12, 1, pad=2, blend=3, first=True, last=False)
    b = _profile(12, 1, pad=2, blend=3, first=False, last=True)
    overlap = 2 * 2 + 3
    total = a[-overlap:] + b[:overlap]
    assert torch.allclose(total[2:5], torch.ones(3))


def test_a_tile_too_small_for_its_margins_is_refused():
    with pytest.raises(ValueError, match="must exceed"):
        Tiled(Interpolate(2), 2, tile=8, pad=4, blend=4)


def test_self_ensemble_is_the_mean_of_the_eight_transforms():
    torch.manual_seed(1)
    model = superres.build("fsrcnn", 2).eval()
    x = torch.rand(1, 1, 9, 7)
    expected = []
    for turns in range(4):
        for flip in (False, True):
            y = torch.rot90(x.flip(-1) if flip else x, turns, dims=(-2, -1))
            y = torch.rot90(model(y), -turns, dims=(-2, -1))
            expected.append(y.flip(-1) if flip else y)
    with torch.no_grad():
        torch.testing.assert_close(SelfEnsemble(model)(x), torch.stack(expected).mean(0))


def test_bicubic_is_flip_and_rotation_symmetric_so_its_ensemble_changes_nothing():
    x = torch.rand(1, 3, 12, 12, dtype=torch.float64)
    torch.testing.assert_close(SelfEnsemble(Interpolate(3))(x), Interpolate(3)(x))


def test_wrappers_pass_the_state_dict_through():
    model = superres.build("espcn", 3)
    wrapped = SelfEnsemble(Tiled(model, 3, tile=32))
    assert wrapped.state_dict().keys() == model.state_dict().keys()
    other = superres.build("espcn", 3)
    wrapped.load_state_dict(other.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), other.parameters(),
                                                 strict=True))


def test_load_with_tiles_and_tta_upscales_rgba_photos(tmp_path):
    up = superres.load("bicubic", 2, tile=16, tta=True)
    image = np.random.default_rng(0).integers(0, 256, (40, 50, 4), dtype=np.uint8)
    plain = superres.load("bicubic", 2).upscale(image)
    assert np.abs(up.upscale(image).astype(int) - plain).max() <= 1
