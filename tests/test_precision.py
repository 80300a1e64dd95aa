"""Half precision only where a probe shows it is safe; float32 with a warning otherwise."""

import numpy as np
import pytest
import torch
from torch import nn

from superres.inference.upscaler import Upscaler
from superres.models import get_model
from superres.models.registry import ModelSpec
from superres.nn.upsamplers import Interpolate


class Overflowing(nn.Module):
    """Bicubic through an intermediate of 1e5 times the signal: fine in float32 and
    bfloat16, infinite in float16 (whose largest value is 65504)."""

    def __init__(self, scale: int) -> None:
        super().__init__()
        self.bicubic = Interpolate(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bicubic(x * 1e5) / 1e5


def _upscaler(model: nn.Module, precision: str) -> Upscaler:
    spec = ModelSpec(name="test", summary="", paper="", scales=(2,), framework="post-upsampling",
                     build=lambda s: model, color="any")
    return Upscaler(spec, 2, model, torch.device("cpu"), precision=precision)


IMAGE = np.random.default_rng(0).integers(0, 256, (20, 24, 3), dtype=np.uint8)


def test_a_model_that_overflows_in_float16_falls_back_to_float32(one_thread):
    with pytest.warns(UserWarning, match="float16 is not safe for this model: its output "
                                         "overflows.*running in float32"):
        up = _upscaler(Overflowing(2), "float16")
    assert up.dtype == torch.float32
    reference = _upscaler(Overflowing(2), "float32").upscale(IMAGE)
    np.testing.assert_array_equal(up.upscale(IMAGE), reference)


def test_a_safe_model_runs_in_float16_within_one_level(one_thread):
    up = _upscaler(Interpolate(2), "float16")
    assert up.dtype == torch.float16
    reference = _upscaler(Interpolate(2), "float32").upscale(IMAGE)
    assert np.abs(up.upscale(IMAGE).astype(int) - reference).max() <= 1


def test_bfloat16_is_too_coarse_for_8_bit_output(one_thread):
    # 8 bits of mantissa: 200/255 is already half a level off before any arithmetic
    with pytest.warns(UserWarning, match=r"bfloat16 is not safe.*differs from float32 by "
                                         r"[\d.]+ 8-bit levels"):
        assert _upscaler(Interpolate(2), "bfloat16").dtype == torch.float32


def test_espcn_passes_the_float16_check(one_thread):
    torch.manual_seed(0)
    spec = get_model("espcn")
    up = Upscaler(spec, 3, spec.build(3).eval(), torch.device("cpu"), precision="float16")
    assert up.dtype == torch.float16 and up._fused is None  # the fused path is float32


def test_unknown_precisions_are_refused():
    with pytest.raises(ValueError, match="precision must be one of"):
        _upscaler(Interpolate(2), "float8")
