"""Losses: hand-computable values and gradients for TV, Gram, and every adversarial form;
perceptual losses vanish on identical images and never fall back to random features."""

from __future__ import annotations

import math
import os

import pytest
import torch

from superres.nn.vgg import find_vgg_weights
from superres.train.losses import (
    ADVERSARIAL_LOSSES,
    Charbonnier,
    HingeGANLoss,
    LSGANLoss,
    PerceptualLoss,
    RaGANLoss,
    TextureLoss,
    TVLoss,
    VanillaGANLoss,
    adversarial_loss,
    gram_matrix,
    pixel_loss,
)
from superres.weights import WeightsNotFoundError

torch.set_num_threads(1)
LN2 = math.log(2)


def _logits(*values: float) -> torch.Tensor:
    return torch.tensor(values, requires_grad=True)


def _grad(loss: torch.Tensor, tensor: torch.Tensor) -> torch.Tensor:
    (grad,) = torch.autograd.grad(loss, tensor, retain_graph=True)
    return grad


@pytest.fixture
def real_vgg19():
    """The real VGG19 weights in $SUPERRES_WEIGHTS, or skip saying how to provide them."""
    if not os.environ.get("SUPERRES_WEIGHTS", "").strip():
        pytest.skip("SUPERRES_WEIGHTS is not set to the folder of pretrained weights")
    try:
        return find_vgg_weights()
    except WeightsNotFoundError as missing:
        pytest.skip(str(missing))


# ----------------------------------------------------------------------------- pixel


def test_pixel_losses_are_still_named_l1_mse_and_charbonnier():
    sr, hr = torch.zeros(1, 1, 2, 2), torch.full((1, 1, 2, 2), 0.5)
    assert pixel_loss("l1")(sr, hr).item() == pytest.approx(0.5)
    assert pixel_loss("mse")(sr, hr).item() == pytest.approx(0.25)
    assert isinstance(pixel_loss("charbonnier"), Charbonnier)
    with pytest.raises(ValueError, match="choose from l1, mse, charbonnier"):
        pixel_loss("l3")


# ----------------------------------------------------------------------------- total variation


def test_tv_of_a_horizontal_ramp_is_its_slope_with_gradient_only_at_the_ends():
    width = 5
    ramp = (0.5 * torch.arange(width, dtype=torch.float32)).expand(1, 1, 2, width).clone()
    ramp.requires_grad_()
    loss = TVLoss()(ramp)
    assert loss.item() == pytest.approx(0.5)
    step = 1 / (2 * (width - 1))  # one over the number of horizontal differences
    expected = torch.zeros(1, 1, 2, width)
    expected[..., 0], expected[..., -1] = -step, step
    torch.testing.assert_close(_grad(loss, ramp), expected)
    assert TVLoss(power=2)(ramp).item() == pytest.approx(0.25)


def test_tv_of_a_constant_image_is_zero():
    assert TVLoss()(torch.full((2, 3, 4, 4), 0.7)).item() == 0


# ----------------------------------------------------------------------------- Gram


def test_gram_matrix_of_a_tiny_feature_map_and_its_gradient():
    features = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]], requires_grad=True)  # (1, 2, 1, 2)
    gram = gram_matrix(features)
    # [[1*1 + 2*2, 1*3 + 2*4], [3*1 + 4*2, 3*3 + 4*4]] / (C*H*W = 4)
    torch.testing.assert_close(gram, torch.tensor([[[1.25, 2.75], [2.75, 6.25]]]))
    # d(sum G)/dF[c, k] = 2 * (sum over channels of F[:, k]) / 4
    expected = torch.tensor([[[[2.0, 3.0]], [[2.0, 3.0]]]])
    torch.testing.assert_close(_grad(gram.sum(), features), expected)


# ----------------------------------------------------------------------------- adversarial


def test_vanilla_gan_at_logit_zero_costs_ln2_per_side():
    real, fake = _logits(0.0, 0.0), _logits(0.0, 0.0, 0.0, 0.0)
    gan = VanillaGANLoss()
    d_loss, g_loss = gan.discriminator_loss(real, fake), gan.generator_loss(fake)
    assert d_loss.item() == pytest.approx(2 * LN2)
    assert g_loss.item() == pytest.approx(LN2)
    # d BCE / d logit = sigmoid(logit) - target, averaged
    torch.testing.assert_close(_grad(d_loss, real), torch.full((2,), -0.5 / 2))
    torch.testing.assert_close(_grad(d_loss, fake), torch.full((4,), 0.5 / 4))
    torch.testing.assert_close(_grad(g_loss, fake), torch.full((4,), -0.5 / 4))


def test_vanilla_gan_discriminator_that_is_sure_and_right_costs_nothing():
    loss = VanillaGANLoss().discriminator_loss(_logits(30.0), _logits(-30.0))
    assert loss.item() == pytest.approx(0, abs=1e-12)


def test_lsgan_is_half_the_squared_distance_to_the_targets():
    gan = LSGANLoss()
    real, fake = _logits(1.0, 1.0), _logits(0.0, 0.0)
    assert gan.discriminator_loss(real, fake).item() == 0
    g_loss = gan.generator_loss(fake)
    assert g_loss.item() == pytest.approx(0.5)
    torch.testing.assert_close(_grad(g_loss, fake), torch.full((2,), -1 / 2))
    assert gan.discriminator_loss(_logits(0.0), _logits(1.0)).item() == pytest.approx(1.0)


def test_hinge_penalises_only_inside_the_margins():
    gan = HingeGANLoss()
    real, fake = _logits(2.0, 0.5), _logits(-2.0, 0.25)
    d_loss = gan.discriminator_loss(real, fake)
    assert d_loss.item() == pytest.approx((0 + 0.5) / 2 + (0 + 1.25) / 2)
    torch.testing.assert_close(_grad(d_loss, real), torch.tensor([0.0, -0.5]))
    torch.testing.assert_close(_grad(d_loss, fake), torch.tensor([0.0, 0.5]))
    g_loss = gan.generator_loss(fake)
    assert g_loss.item() == pytest.approx(-(-2.0 + 0.25) / 2)
    torch.testing.assert_close(_grad(g_loss, fake), torch.full((2,), -0.5))


def test_ragan_with_equal_real_and_fake_logits_costs_2_ln2_on_both_sides():
    real, fake = _logits(0.3, 0.3), _logits(0.3, 0.3, 0.3)
    gan = RaGANLoss()
    d_loss, g_loss = gan.discriminator_loss(real, fake), gan.generator_loss(fake, real)
    assert d_loss.item() == pytest.approx(2 * LN2)
    assert g_loss.item() == pytest.approx(2 * LN2)
    # Each logit appears in both terms (directly and through the other side's mean): 2 x 0.5/N.
    torch.testing.assert_close(_grad(d_loss, real), torch.full((2,), -1 / 2))
    torch.testing.assert_close(_grad(d_loss, fake), torch.full((3,), 1 / 3))
    torch.testing.assert_close(_grad(g_loss, fake), torch.full((3,), -1 / 3))


def test_ragan_generator_learns_from_real_logits_but_does_not_push_them():
    real, fake = _logits(1.0, -1.0), _logits(0.5)
    g_loss = RaGANLoss().generator_loss(fake, real)
    (real_grad,) = torch.autograd.grad(g_loss, real, allow_unused=True)
    assert real_grad is None
    lower = RaGANLoss().generator_loss(fake, _logits(-5.0, -5.0))
    assert lower < g_loss  # real images that look less real make G's job easier


def test_only_ragan_is_relativistic_and_its_generator_needs_real_logits():
    assert [n for n, cls in ADVERSARIAL_LOSSES.items() if cls.relativistic] == ["ragan"]
    with pytest.raises(ValueError, match="needs D's outputs on real images"):
        RaGANLoss().generator_loss(_logits(0.0))


def test_adversarial_losses_are_found_by_name():
    assert isinstance(adversarial_loss("hinge"), HingeGANLoss)
    with pytest.raises(ValueError, match="choose from vanilla, lsgan, hinge, ragan"):
        adversarial_loss("wgan")


# ----------------------------------------------------------------------------- perceptual


def test_perceptual_loss_is_zero_on_identical_images_and_positive_otherwise():
    torch.manual_seed(0)
    loss = PerceptualLoss({"relu1_2": 1.0, "conv2_2": 0.5}, pretrained=False)
    hr = torch.rand(2, 3, 16, 16)
    sr = (hr + 0.1 * torch.randn_like(hr)).requires_grad_()
    assert loss(hr, hr).item() == 0
    value = loss(sr, hr)
    assert value.item() > 0
    value.backward()
    assert sr.grad is not None and sr.grad.abs().sum() > 0
    assert all(p.grad is None for p in loss.parameters())


def test_l2_criterion_is_the_mean_squared_feature_difference():
    torch.manual_seed(0)
    loss = PerceptualLoss(["conv1_1"], criterion="l2", pretrained=False)
    sr, hr = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    features = loss.features
    expected = ((features(sr)["conv1_1"] - features(hr)["conv1_1"]) ** 2).mean()
    torch.testing.assert_close(loss(sr, hr), expected)


def test_perceptual_loss_never_silently_uses_random_features(tmp_path, monkeypatch):
    monkeypatch.setenv("SUPERRES_WEIGHTS", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"vgg19-dcbb9e9d\.pth"):
        PerceptualLoss()
    with pytest.raises(FileNotFoundError):
        TextureLoss()


def test_perceptual_loss_on_real_vgg19_features(real_vgg19):
    loss = PerceptualLoss({"relu2_2": 1.0, "relu3_1": 1.0}, weights=real_vgg19)
    hr = torch.rand(1, 3, 24, 24, generator=torch.Generator().manual_seed(0))
    assert loss(hr, hr).item() == 0
    blurred = torch.nn.functional.avg_pool2d(hr, 3, stride=1, padding=1)
    assert loss(blurred, hr).item() > 0


def test_texture_loss_is_zero_on_identical_images_and_positive_otherwise():
    torch.manual_seed(0)
    loss = TextureLoss(patch=16, pretrained=False)
    hr = torch.rand(1, 3, 32, 40)  # two rows of two patches; an 8-pixel remainder is dropped
    assert loss(hr, hr).item() == 0
    assert loss(hr.flip(-1), hr).item() > 0


def test_texture_patch_larger_than_the_image_is_a_clear_error():
    loss = TextureLoss(["relu1_1"], patch=16, pretrained=False)
    with pytest.raises(ValueError, match=r"8x8 are smaller than the 16x16 texture patch"):
        loss(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))
