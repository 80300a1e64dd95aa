"""The fused form of a plain convolution stack computes the same function as the model."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import superres
from superres.inference.fused import FusedChain


@pytest.mark.parametrize(("name", "scale"), [("espcn", 2), ("espcn", 3), ("fsrcnn", 4)])
def test_fused_model_equals_the_model_at_odd_sizes_and_on_its_borders(name, scale, one_thread):
    torch.manual_seed(0)
    model = superres.build(name, scale).eval()
    fused = FusedChain.compile(model)
    assert fused is not None
    x = torch.rand(2, 1, 37, 41)
    with torch.no_grad():
        torch.testing.assert_close(fused(x), model(x), atol=1e-5, rtol=0)


def test_bands_of_rows_change_nothing(one_thread):
    torch.manual_seed(1)
    model = superres.build("espcn", 3).eval()
    fused = FusedChain.compile(model)
    x = torch.rand(1, 1, 100, 30)
    with torch.no_grad():
        whole = fused(x)
        fused.strip_elements = 1  # the smallest bands: 32 rows, context recomputed
        torch.testing.assert_close(fused(x), whole, atol=1e-6, rtol=0)


def test_tanh_runs_as_a_sigmoid_folded_into_the_weights():
    fused = FusedChain.compile(superres.build("espcn", 2))
    assert [step.attr for step in fused.steps] == ["sigmoid", "sigmoid", "none"]
    assert [step.fill for step in fused.steps[:2]] == [0.5, 0.5]  # sigmoid(0) stands for 0


@pytest.mark.parametrize("act", [nn.Tanh(), nn.ReLU(), nn.LeakyReLU(0.2), nn.Sigmoid(),
                                 nn.PReLU(8)])
def test_every_supported_activation_and_a_final_one(act, one_thread):
    torch.manual_seed(2)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), act, nn.Conv2d(8, 8, 5, padding=2),
                          act).eval()
    fused = FusedChain.compile(model)
    x = torch.randn(1, 3, 19, 23)
    with torch.no_grad():
        torch.testing.assert_close(fused(x), model(x), atol=1e-5, rtol=0)


def test_phase_planes_are_the_output_before_the_pixel_shuffle(one_thread):
    model = superres.build("espcn", 4).eval()
    fused = FusedChain.compile(model)
    x = torch.rand(1, 1, 20, 24)
    with torch.no_grad():
        planes = fused.phases(x)
        assert planes.shape == (1, 16, 20, 24)
        torch.testing.assert_close(F.pixel_shuffle(planes, 4), model(x), atol=1e-5, rtol=0)


def test_models_that_are_not_plain_convolution_stacks_are_left_alone():
    assert FusedChain.compile(superres.build("srcnn", 2)) is None  # bicubic first
    assert FusedChain.compile(nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1))) is None
    with pytest.raises(ValueError, match="pixel shuffle"):
        FusedChain.compile(superres.build("fsrcnn", 2)).phases(torch.rand(1, 1, 8, 8))
