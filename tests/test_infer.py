"""Tiled inference equals whole-image inference; self-ensemble is the mean of 8 transforms."""

import itertools

import numpy as np
import pytest
import torch

import superres
from superres.inference.tiles import (
    SelfEnsemble,
    Tiled,
    _profile,
    cut_tiles,
    tile_context,
    tile_grid,
)
from superres.nn.upsamplers import Interpolate


@pytest.mark.parametrize(
    ("name", "scale"), [("srcnn", 3), ("fsrcnn", 2), ("fsrcnn", 3), ("espcn", 4), ("bicubic", 3)]
)
@pytest.mark.parametrize("blend", [0, 4])
def test_tiled_equals_untiled_at_sizes_that_are_not_tile_multiples(name, scale, blend, one_thread):
    torch.manual_seed(0)
    model = superres.build(name, scale).eval()
    x = torch.rand(1, 1, 53, 38)
    tiled = Tiled(model, scale, tile=24, blend=blend)
    assert len(cut_tiles(53, 38, (24, 24), tiled.pad)) > 4
    with torch.no_grad():
        np.testing.assert_allclose(tiled(x).numpy(), model(x).numpy(), atol=1e-4)


def test_tiles_are_the_fewest_that_fit_and_evenly_spread():
    assert tile_grid(512, 256, 12) == (179, [0, 167, 333])
    assert tile_grid(512, 512, 12) == (512, [0])
    size, starts = tile_grid(1000, 100, 10)
    assert len(starts) == 11 and size <= 100 and starts[-1] + size == 1000
    assert all(b - a <= size - 10 for a, b in itertools.pairwise(starts))


def test_cut_tiles_keep_every_pixel_once_and_away_from_inner_edges():
    pad = 3
    counts = np.zeros((50, 41), int)
    for cut in cut_tiles(50, 41, (16, 12), pad):
        counts[cut.kept_rows, cut.kept_cols] += 1
        for kept, tile, length in ((cut.kept_rows, cut.rows, 50), (cut.kept_cols, cut.cols, 41)):
            assert tile.start <= kept.start and kept.stop <= tile.stop <= length
            assert kept.start == 0 or kept.start - tile.start >= pad
            assert kept.stop == length or tile.stop - kept.stop >= pad
    assert (counts == 1).all()


def test_blended_bands_equal_blending_over_the_whole_image(one_thread):
    # VDSR sees far beyond a pad of 3, so the blend shows; the band-by-band accumulation
    # must give what one accumulator over the whole image gives.
    torch.manual_seed(0)
    model = superres.build("vdsr", 2).eval()
    x = torch.rand(1, 1, 45, 70)
    pad, blend, s = 3, 4, 2
    (height, rows), (width, cols) = (tile_grid(45, 24, 2 * pad + blend),
                                     tile_grid(70, 24, 2 * pad + blend))
    total, weights = torch.zeros(1, 1, 90, 140), torch.zeros(90, 140)
    with torch.no_grad():
        for i, top in enumerate(rows):
            for j, left in enumerate(cols):
                weight = (_profile(height, s, pad, blend, i == 0, i == len(rows) - 1)[:, None]
                          * _profile(width, s, pad, blend, j == 0, j == len(cols) - 1)[None])
                y = model(x[..., top : top + height, left : left + width])
                total[..., top * s : (top + height) * s, left * s : (left + width) * s] += (
                    y * weight)
                weights[top * s : (top + height) * s, left * s : (left + width) * s] += weight
        tiled = Tiled(model, s, tile=24, pad=pad, blend=blend)(x)
    torch.testing.assert_close(tiled, total / weights)


def test_small_models_are_cut_exactly_and_deep_ones_blended():
    assert tile_context(superres.build("espcn", 3), 1) == (6, 0)  # 5-3-3: radius 4, + 1
    assert tile_context(superres.build("edsr", 2), 3) == (32, 4)


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
