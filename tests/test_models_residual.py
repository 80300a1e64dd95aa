"""The deep residual family is the papers' and the official code's: EDSR, RDN and RCAN have
the official parameter counts at every scale, upscale any size, and train."""

import pytest
import torch

from superres.models.edsr import EDSR, EDSR_BASELINE, edsr
from superres.models.rcan import RCAN, rcan
from superres.models.rdn import RDN, rdn
from superres.nn.blocks.attention import ChannelAttention
from superres.nn.blocks.dense import DenseBlock, ResidualDenseBlock
from superres.nn.frameworks import DIV2K_RGB_MEAN, MeanShift
from superres.nn.upsamplers import SubPixelUpsampler

SPECS = {spec.name: spec for spec in (EDSR_BASELINE, EDSR, RDN, RCAN)}


pytestmark = pytest.mark.usefixtures("one_thread")

# Trainable parameters of the official implementations (EDSR-PyTorch's EDSR and RDN,
# yulunzhang/RCAN), mean-shift layers excluded as they are frozen.
OFFICIAL_PARAMS = {
    "edsr-baseline": {2: 1_369_859, 3: 1_554_499, 4: 1_517_571},
    "edsr": {2: 40_729_603, 3: 43_680_003, 4: 43_089_923},
    "rdn": {2: 22_123_395, 3: 22_308_035, 4: 22_271_107},
    "rcan": {2: 15_444_643, 3: 15_629_283, 4: 15_592_355},
}


def trainable(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def meta_params(name: str, scale: int) -> int:
    """Parameters counted on the meta device: the big models cost no memory or init time."""
    with torch.device("meta"):
        return trainable(SPECS[name].build(scale))


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("name", list(OFFICIAL_PARAMS))
def test_parameter_count_equals_the_official_implementation(name, scale):
    assert meta_params(name, scale) == OFFICIAL_PARAMS[name][scale]


@pytest.mark.parametrize(
    ("name", "published", "digits"),
    [("edsr-baseline", {2: "1.37M", 3: "1.55M", 4: "1.52M"}, 2),  # EDSR-PyTorch README
     ("edsr", {2: "40.7M", 3: "43.7M", 4: "43.1M"}, 1)],
)
def test_edsr_counts_round_to_the_edsr_pytorch_readme(name, published, digits):
    for scale, text in published.items():
        assert f"{meta_params(name, scale) / 1e6:.{digits}f}M" == text


def test_rcan_x4_has_15_592_355_parameters_and_rdn_22_1_million():
    assert meta_params("rcan", 4) == 15_592_355  # 15.59M in published lists
    assert round(meta_params("rdn", 2) / 1e6, 1) == 22.1  # torchSR README


def test_registry_count_is_the_trainable_count_and_excludes_the_mean_shift():
    model = EDSR_BASELINE.build(2)
    assert EDSR_BASELINE.params(2) == trainable(model) == 1_369_859
    assert "sub_mean.weight" in model.state_dict()  # saved with the weights, never trained
    assert not any(name.startswith(("sub_mean", "add_mean")) for name, _ in
                   model.named_parameters())


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize(
    "build",
    [EDSR_BASELINE.build, lambda s: edsr(s, blocks=2, channels=16),
     lambda s: rdn(s, blocks=2, layers=3, growth=8, channels=16),
     lambda s: rcan(s, groups=2, blocks=2, channels=32)],
    ids=["edsr-baseline", "edsr-reduced", "rdn-reduced", "rcan-reduced"],
)
def test_output_is_scale_times_the_input_for_odd_sizes(build, scale):
    out = build(scale)(torch.rand(1, 3, 13, 11))
    assert out.shape == (1, 3, 13 * scale, 11 * scale)


def test_x4_upsampler_is_two_x2_pixel_shuffles_and_x3_one_x3():
    shuffles = [m.upscale_factor for m in SubPixelUpsampler(64, 64, 4).modules()
                if isinstance(m, torch.nn.PixelShuffle)]
    assert shuffles == [2, 2]
    assert [m.upscale_factor for m in SubPixelUpsampler(64, 64, 3).modules()
            if isinstance(m, torch.nn.PixelShuffle)] == [3]
    with pytest.raises(ValueError, match="x5"):
        SubPixelUpsampler(64, 64, 5)


def test_mean_shift_centres_on_the_div2k_mean_in_the_0_255_range_and_back():
    sub, add = MeanShift(-1), MeanShift(1)
    mean = torch.tensor(DIV2K_RGB_MEAN).view(1, 3, 1, 1).expand(1, 3, 2, 2)
    assert torch.allclose(sub(mean), torch.zeros(1, 3, 2, 2), atol=1e-5)
    assert torch.allclose(sub(torch.ones(1, 3, 1, 1)).flatten(),
                          255 * (1 - torch.tensor(DIV2K_RGB_MEAN)))
    x = torch.rand(1, 3, 5, 5)
    assert torch.allclose(add(sub(x)), x, atol=1e-6)


def test_edsr_residual_scaling_is_0_1_only_in_the_wide_model():
    def scales(model):
        return {m.scale for m in model.body.body if hasattr(m, "scale")}

    assert scales(edsr(2, blocks=2, channels=16)) == {0.1}
    assert scales(EDSR_BASELINE.build(2)) == {1.0}


def test_channel_attention_rescales_each_channel_by_a_weight_in_0_1():
    attention = ChannelAttention(32, reduction=16)
    assert attention.excite[0].out_channels == 2  # 32 / 16
    x = torch.rand(2, 32, 6, 7) + 0.1
    ratio = attention(x) / x
    per_channel = ratio.flatten(2)
    assert torch.allclose(per_channel, per_channel[..., :1].expand_as(per_channel))
    assert ((ratio > 0) & (ratio < 1)).all()


def test_residual_dense_block_grows_by_g_per_layer_and_fuses_back_to_g0():
    assert DenseBlock(64, 64, 8).out_channels == 64 + 8 * 64
    block = ResidualDenseBlock(16, growth=8, layers=3)
    assert block.body.fusion.in_channels == 16 + 3 * 8
    assert block(torch.rand(1, 16, 5, 5)).shape == (1, 16, 5, 5)


def test_rcan_is_residual_in_residual_10_groups_of_20_blocks():
    with torch.device("meta"):
        model = RCAN.build(2)
    groups = model.body.body[:-1]  # the last module is the trunk's closing convolution
    assert len(groups) == 10
    assert all(len(group.body) == 20 + 1 for group in groups)


def test_a_few_adam_steps_lower_the_l1_loss_of_edsr_baseline():
    torch.manual_seed(0)
    model = EDSR_BASELINE.build(2)
    hr = torch.nn.functional.interpolate(torch.rand(2, 3, 6, 6), size=24, mode="bicubic")
    hr = hr.clamp(0, 1)
    lr = torch.nn.functional.avg_pool2d(hr, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    losses = []
    for _ in range(6):
        loss = torch.nn.functional.l1_loss(model(lr), hr)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]
