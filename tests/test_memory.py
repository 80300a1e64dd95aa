"""Memory budgets: sizes, measured activation memory, tiles that fit, and retrying smaller
tiles after running out of memory."""

import warnings

import numpy as np
import pytest
import torch
from torch import nn

import superres
from superres.inference.memory import bytes_per_pixel, is_out_of_memory, largest_tile, parse_size
from superres.inference.upscaler import Upscaler
from superres.models import get_model
from superres.models.registry import ModelSpec
from superres.nn.upsamplers import Interpolate


def test_sizes_read_like_people_write_them():
    assert parse_size("2GB") == 2_000_000_000
    assert parse_size("500 MB") == 500_000_000
    assert parse_size("1.5GiB") == 3 * 2**29
    assert parse_size(4096) == 4096
    for bad in ("two gigs", "0", "-1GB", "5PB"):
        with pytest.raises(ValueError, match="memory"):
            parse_size(bad)


def test_out_of_memory_is_recognised_from_each_library():
    assert is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate"))
    assert is_out_of_memory(RuntimeError("DefaultCPUAllocator: not enough memory: you tried "
                                         "to allocate 123 bytes."))
    assert is_out_of_memory(MemoryError())
    assert not is_out_of_memory(RuntimeError("Given groups=1, weight of size [64, 1, 5, 5]"))
    assert not is_out_of_memory(ValueError("out of memory"))


def test_activation_memory_is_measured_per_input_pixel(one_thread):
    # ESPCN holds its 64-channel first layer and that layer's activation: 2 x 256 bytes
    espcn = bytes_per_pixel(superres.build("espcn", 2).eval(), 1)
    assert 2 * 256 <= espcn < 3 * 256
    wider = nn.Sequential(nn.Conv2d(1, 128, 3, padding=1), nn.ReLU(), nn.Conv2d(128, 1, 1))
    assert bytes_per_pixel(wider.eval(), 1) >= 2 * 512


def test_the_largest_tile_that_fits_and_a_clear_error_when_none_does():
    assert largest_tile(10_000, lambda tile: tile * tile, 16, 500) == 100
    assert largest_tile(10**9, lambda tile: tile * tile, 16, 500) == 500
    with pytest.raises(MemoryError, match="too small"):
        largest_tile(100, lambda tile: tile * tile, 16, 500)


def _espcn(**options) -> Upscaler:
    torch.manual_seed(0)
    return Upscaler(get_model("espcn"), 3, superres.build("espcn", 3).eval(),
                    torch.device("cpu"), **options)


def test_a_memory_budget_chooses_the_tile_and_changes_no_pixel(one_thread):
    image = np.random.default_rng(0).integers(0, 256, (150, 120, 3), dtype=np.uint8)
    tight, loose = _espcn(max_memory="36MB"), _espcn(max_memory="2GB")
    shape = torch.Size([1, *image.shape])
    tile = tight._tile_for(shape, alpha=False)
    assert tile is not None and 28 <= tile < 150  # tiles, no smaller than pad + 16 + pad
    assert loose._tile_for(shape, alpha=False) is None  # the whole image fits
    np.testing.assert_array_equal(tight.upscale(image), loose.upscale(image))


class OutOfMemoryAbove(nn.Module):
    """Bicubic that runs out of memory on inputs of more than `pixels` pixels."""

    def __init__(self, scale: int, pixels: int) -> None:
        super().__init__()
        self.bicubic, self.pixels = Interpolate(scale), pixels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2] * x.shape[-1] > self.pixels:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self.bicubic(x)


def _fragile(pixels: int, tile: int) -> Upscaler:
    spec = ModelSpec(name="fragile", summary="", paper="", scales=(2,), framework="post-upsampling",
                     build=lambda s: OutOfMemoryAbove(s, pixels), color="any")
    return Upscaler(spec, 2, spec.build(2), torch.device("cpu"), tile=tile)


def test_out_of_memory_halves_the_tile_until_it_fits():
    image = np.random.default_rng(1).integers(0, 256, (200, 150, 3), dtype=np.uint8)
    up = _fragile(pixels=90 * 90, tile=160)  # the receptive-field probe needs 65 x 65
    with pytest.warns(UserWarning, match="retrying with 80-pixel tiles"):
        out = up.upscale(image)
    np.testing.assert_array_equal(out, superres.load("bicubic", 2).upscale(image))
    assert up._tile_cap == 80
    with warnings.catch_warnings():  # the next image starts at the tile that fitted
        warnings.simplefilter("error")
        up.upscale(image)


def test_out_of_memory_at_the_smallest_tile_is_a_clear_error():
    up = _fragile(pixels=90 * 90, tile=64)
    image = np.zeros((100, 100, 3), np.uint8)
    up.upscale(image)
    up.model.pixels = 10  # from now on nothing fits
    with pytest.raises(MemoryError, match=r"even with \d+-pixel tiles \(the smallest"), \
            pytest.warns(UserWarning, match="retrying"):
        up.upscale(image)
