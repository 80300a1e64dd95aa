"""Each named model is the paper's: parameter count, output size, receptive field."""

import pytest
import torch

import superres
from superres.models import MODELS
from superres.nn.layers import receptive_field


def weights(model: torch.nn.Module) -> int:
    """Convolution weights only (no biases or PReLU slopes), as the papers count them."""
    return sum(p.numel() for p in model.parameters() if p.ndim > 1)


def total(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_srcnn_955_has_57184_weights():
    model = superres.build("srcnn", 3)
    assert weights(model) == 9 * 9 * 64 + 5 * 5 * 64 * 32 + 5 * 5 * 32 == 57_184
    assert total(model) == 57_184 + 64 + 32 + 1


def test_srcnn_915_has_8032_weights():
    assert weights(superres.build("srcnn-915", 3)) == 8_032


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_fsrcnn_has_12464_weights_at_every_scale(scale):
    model = superres.build("fsrcnn", scale)
    assert weights(model) == 12_464
    assert total(model) == 12_464 + (56 + 12 + 4 * 12 + 56 + 1) + (56 + 12 + 4 * 12 + 56)


def test_fsrcnn_s_has_3937_weights():
    assert weights(superres.build("fsrcnn-s", 3)) == 3_937


@pytest.mark.parametrize(("scale", "expected"), [(2, 21_184), (3, 22_624), (4, 24_640)])
def test_espcn_weights_follow_its_layer_sizes(scale, expected):
    # 5x5x64 + 3x3x64x32 + 3x3x32x(scale^2)
    assert weights(superres.build("espcn", scale)) == expected == 1600 + 18432 + 288 * scale**2


@pytest.mark.parametrize("name", ["srcnn", "srcnn-915", "fsrcnn", "fsrcnn-s", "espcn"])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_output_is_scale_times_the_input_for_odd_sizes(name, scale):
    out = superres.build(name, scale)(torch.rand(2, 1, 17, 13))
    assert out.shape == (2, 1, 17 * scale, 13 * scale)


@pytest.mark.parametrize(
    ("name", "kernels"),
    [("srcnn", [9, 5, 5]), ("srcnn-915", [9, 1, 5]), ("fsrcnn", [5, 1, 3, 3, 3, 3, 1]),
     ("espcn", [5, 3])],
)
def test_receptive_field_of_the_convolutional_body(name, kernels):
    # a stack of stride-1 convolutions sees 1 + sum(k - 1) pixels
    assert receptive_field(superres.build(name, 3).body) == 1 + sum(k - 1 for k in kernels)


def test_models_json_params_are_the_trainable_parameter_counts():
    for spec in MODELS.values():
        for scale in spec.scales[:1]:
            assert spec.params(scale) == total(spec.build(scale))
