"""The deep CNN family is the papers': VDSR, DRCN, LapSRN/MS-LapSRN, SRDenseNet and D-DBPN.

Full-size models are only built to count parameters; forwards and training steps run on
reduced widths and depths (same layer geometry) and tiny inputs.
"""

from functools import partial

import pytest
import torch

from superres.models.dbpn import DBPN, dbpn
from superres.models.drcn import DRCN, drcn
from superres.models.lapsrn import LAPSRN, MS_LAPSRN, lapsrn, ms_lapsrn
from superres.models.srdensenet import SRDENSENET, SRDENSENET_H, SRDENSENET_HL, srdensenet
from superres.models.vdsr import VDSR, vdsr
from superres.nn.blocks.recursive import Recursive
from superres.nn.layers import receptive_field
from superres.nn.upsamplers import BilinearUpsampler
from superres.train.losses import Charbonnier

pytestmark = pytest.mark.usefixtures("one_thread")


SPECS = [VDSR, DRCN, LAPSRN, MS_LAPSRN, SRDENSENET_H, SRDENSENET_HL, SRDENSENET, DBPN]


def weights(model: torch.nn.Module) -> int:
    """Convolution weights only (no biases, slopes or averaging weights), as papers count."""
    return sum(p.numel() for p in model.parameters() if p.ndim > 1)


def total(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def conv3x3(cin: int, cout: int) -> int:
    return 9 * cin * cout


def active(model: torch.nn.Module) -> torch.nn.Module:
    """Positive weights and biases: every ReLU passes gradient at `receptive_field`'s all-zero
    probe (zero-initialised biases put every ReLU on its kink) and every tap counts (DRCN's
    recursive convolution starts as an identity)."""
    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.uniform_(module.weight, 0.0, 0.1)
            torch.nn.init.constant_(module.bias, 0.1)
    return model


# --- VDSR ------------------------------------------------------------------------------------

@pytest.mark.parametrize("scale", [2, 3, 4])
def test_vdsr_has_664704_weights_665k_parameters(scale):
    model = VDSR.build(scale)
    assert weights(model) == conv3x3(1, 64) + 18 * conv3x3(64, 64) + conv3x3(64, 1) == 664_704
    assert total(model) == 664_704 + 19 * 64 + 1 == 665_921


def test_vdsr_sees_41_pixels_through_20_layers():
    assert receptive_field(active(VDSR.build(2).body), size=45) == 1 + 20 * 2 == 41


def test_vdsr_learns_the_residual_of_the_interpolated_image():
    model = vdsr(3, depth=3, channels=4)
    torch.nn.init.zeros_(model.body.body[-1].weight)
    torch.nn.init.zeros_(model.body.body[-1].bias)
    lr = torch.rand(1, 1, 5, 7)
    assert torch.equal(model(lr), model.upsample(lr))


def test_vdsr_weights_serve_every_scale():
    x4 = VDSR.build(4)
    x4.load_state_dict(VDSR.build(2).state_dict())


# --- DRCN ------------------------------------------------------------------------------------

@pytest.mark.parametrize("scale", [2, 3, 4])
def test_drcn_has_1774k_weights(scale):
    model = DRCN.build(scale)
    # embedding 1->256, 256->256; ONE recursive 256->256; reconstruction 256->256, 256->1
    assert weights(model) == 3 * 256 * 256 * 9 + 2 * 256 * 9 == 1_774_080
    assert total(model) == 1_774_080 + 4 * 256 + 1 + 16  # biases + 16 averaging weights


def test_drcn_recursion_adds_depth_not_parameters():
    assert total(drcn(2, recursions=16)) - total(drcn(2, recursions=4)) == 16 - 4
    model = DRCN.build(2)
    recursive = model.body.recursion.block[0].weight
    assert sum(p is recursive for p in model.parameters()) == 1  # one conv, used 16 times


def test_drcn_sees_41_pixels_through_20_convolutions():
    assert receptive_field(active(drcn(2, channels=2).body), size=45) == 1 + (2 + 16 + 2) * 2


def test_drcn_output_is_the_weighted_average_of_its_predictions():
    model = drcn(2, channels=4, recursions=3)
    with torch.no_grad():
        model.body.ensemble.copy_(torch.tensor([0.2, 0.3, 0.5]))
    x = torch.rand(1, 1, 9, 7)
    predictions, output = model.body.predictions(x)
    assert len(predictions) == 3
    expected = 0.2 * predictions[0] + 0.3 * predictions[1] + 0.5 * predictions[2]
    assert torch.allclose(output, expected)
    assert torch.allclose(model.body(x), output, atol=1e-6)


def test_drcn_recursion_starts_as_identity():
    block = drcn(2, channels=4, recursions=2).body.recursion.block
    h = torch.rand(1, 4, 5, 5)
    assert torch.allclose(block(h), h)


def test_drcn_alpha_decays_from_one_to_zero():
    model = drcn(2, channels=2, recursions=2, alpha_steps=100)
    assert [model.alpha(s) for s in (0, 50, 100, 1000)] == [1.0, 0.5, 0.0, 0.0]


# --- LapSRN / MS-LapSRN -----------------------------------------------------------------------

LAPSRN_LEVEL = 10 * conv3x3(64, 64) + conv3x3(64, 64) + conv3x3(64, 1) + 4 * 4  # 406,096


@pytest.mark.parametrize(("scale", "levels"), [(2, 1), (4, 2), (8, 3)])
def test_lapsrn_has_d10_levels_of_its_own(scale, levels):
    # input conv + per level: 10 convs, 3x3 feature deconvolution, band conv, 4x4 image deconv
    assert weights(LAPSRN.build(scale)) == conv3x3(1, 64) + levels * LAPSRN_LEVEL


def test_lapsrn_x4_has_812k_weights():
    assert weights(LAPSRN.build(4)) == 812_768


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_ms_lapsrn_d5r8_has_222k_weights_at_every_scale(scale):
    model = MS_LAPSRN.build(scale)
    # input conv, 5 recursive convs, feature deconvolution, band conv, image deconvolution
    assert weights(model) == conv3x3(1, 64) + 6 * conv3x3(64, 64) + conv3x3(64, 1) + 16
    assert weights(model) == 222_352
    assert total(model) == 222_352 + 64 + 5 * 64 + 64 + 1


def test_ms_lapsrn_shares_one_level_across_levels_and_one_block_across_recursions():
    model = MS_LAPSRN.build(8)
    assert len(model.levels) == 1
    assert sum(p.shape == (64, 64, 3, 3) for p in model.parameters()) == 5 + 1
    assert sum(p.shape == (64, 64, 3, 3) for p in LAPSRN.build(8).parameters()) == 3 * 11
    MS_LAPSRN.build(2).load_state_dict(model.state_dict())  # one model for every scale


def test_lapsrn_pyramid_outputs_every_level():
    outputs = lapsrn(8, depth=1, channels=4).pyramid(torch.rand(1, 1, 5, 3))
    assert [o.shape[-2:] for o in outputs] == [(10, 6), (20, 12), (40, 24)]


def test_image_branch_starts_as_bilinear_upsampling():
    up = BilinearUpsampler()
    assert torch.allclose(up(torch.ones(1, 1, 6, 6))[..., 1:-1, 1:-1], torch.ones(1, 1, 10, 10))
    ramp = torch.arange(6.0).repeat(6, 1)[None, None]
    assert torch.allclose(up(ramp)[0, 0, 3, 1:-1], torch.arange(10.0) / 2 + 0.25)


def test_recursion_applies_one_block_with_shared_weights():
    block = torch.nn.Conv2d(2, 2, 3, padding=1)
    recursion = Recursive(block, times=3, shared_source=True)
    x = torch.rand(1, 2, 5, 5)
    expected = x
    for _ in range(3):
        expected = block(expected) + x
    assert torch.allclose(recursion(x), expected)
    assert len(list(recursion.parameters())) == 2


# --- SRDenseNet ------------------------------------------------------------------------------

DENSE_INNER = sum(conv3x3(16 * i, 16) for i in range(1, 8))  # layers 2..8 of a block: 64,512
DENSENET_TAIL = 2 * conv3x3(256, 256) + conv3x3(256, 1)  # two deconvolutions, reconstruction


def test_srdensenet_h_has_1879k_weights():
    blocks = 8 * (conv3x3(128, 16) + DENSE_INNER)
    expected = conv3x3(1, 128) + blocks + 128 * 256 + DENSENET_TAIL
    assert weights(SRDENSENET_H.build(4)) == expected == 1_879_424


def test_srdensenet_hl_has_1912k_weights():
    blocks = 8 * (conv3x3(128, 16) + DENSE_INNER)
    expected = conv3x3(1, 128) + blocks + 256 * 256 + DENSENET_TAIL
    assert weights(SRDENSENET_HL.build(4)) == expected == 1_912_192


def test_srdensenet_all_has_2658k_weights():
    # block b sees the low-level maps and blocks 1..b-1: 128 * b maps; bottleneck 1152 -> 256
    blocks = sum(conv3x3(128 * b, 16) + DENSE_INNER for b in range(1, 9))
    expected = conv3x3(1, 128) + blocks + 1152 * 256 + DENSENET_TAIL
    assert weights(SRDENSENET.build(4)) == expected == 2_657_664
    assert total(SRDENSENET.build(4)) == 2_659_585


def test_srdensenet_is_x4_only():
    with pytest.raises(ValueError, match="x4"):
        srdensenet(2)


# --- D-DBPN ----------------------------------------------------------------------------------

def dbpn_parameters(kernel: int) -> int:
    """Weights + biases + one PReLU slope per layer of the official D-DBPN (T = 7)."""
    extract = 3 * 256 * 9 + 256 + 1
    reduce = 256 * 64 + 64 + 1
    units = 13 * 3 * (64 * 64 * kernel**2 + 64 + 1)  # 7 up + 6 down, 3 layers each
    fuse = 2 * sum(64 * k * 64 + 64 + 1 for k in range(2, 7))  # dense 1x1 before units 2..6
    reconstruct = 7 * 64 * 3 * 9 + 3
    return extract + reduce + units + fuse + reconstruct


@pytest.mark.parametrize(("scale", "kernel", "expected"),
                         [(2, 6, 5_953_526), (4, 8, 10_426_358), (8, 12, 23_205_878)])
def test_d_dbpn_parameters_follow_the_official_layers(scale, kernel, expected):
    assert total(DBPN.build(scale)) == dbpn_parameters(kernel) == expected


def test_d_dbpn_units_take_all_earlier_units_of_the_other_kind():
    body = dbpn(4, features=8, projection=4).body
    assert [d.fuse[0].in_channels for d in body.downs[1:]] == [4 * k for k in range(2, 7)]
    assert [u.fuse[0].in_channels for u in body.ups[2:]] == [4 * k for k in range(2, 7)]


# --- every model -----------------------------------------------------------------------------

REDUCED = {
    "vdsr": partial(vdsr, depth=3, channels=4),
    "drcn": partial(drcn, channels=4, recursions=3),
    "lapsrn": partial(lapsrn, depth=1, channels=4),
    "ms-lapsrn": partial(ms_lapsrn, depth=2, recursions=2, channels=4),
    "srdensenet-h": partial(srdensenet, skip="h", growth=2, layers=2, blocks=2, bottleneck=4),
    "srdensenet-hl": partial(srdensenet, skip="hl", growth=2, layers=2, blocks=2, bottleneck=4),
    "srdensenet": partial(srdensenet, growth=2, layers=2, blocks=2, bottleneck=4),
    "dbpn": partial(dbpn, features=8, projection=4, stages=3),
}


@pytest.mark.parametrize(("spec", "scale"), [(s, k) for s in SPECS for k in s.scales],
                         ids=lambda v: getattr(v, "name", str(v)))
def test_output_is_scale_times_the_input_for_odd_sizes(spec, scale):
    channels = 3 if spec.color == "rgb" else 1
    with torch.no_grad():
        out = REDUCED[spec.name](scale)(torch.rand(2, channels, 7, 5))
    assert out.shape == (2, channels, 7 * scale, 5 * scale)


@pytest.mark.parametrize(("name", "scale"), [("drcn", 2), ("lapsrn", 4), ("ms-lapsrn", 4)])
def test_multi_output_models_train_through_their_own_loss(name, scale):
    torch.manual_seed(0)
    model = REDUCED[name](scale)
    lr, hr = torch.rand(2, 1, 6, 6), torch.rand(2, 1, 6 * scale, 6 * scale)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for step in range(6):
        loss = model.training_loss(lr, hr, Charbonnier(), step)
        assert loss.ndim == 0
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_lapsrn_supervises_every_level_against_downscaled_hr():
    model = lapsrn(4, depth=1, channels=4)
    lr, hr = torch.rand(1, 1, 4, 4), torch.rand(1, 1, 16, 16)
    one_level = model.training_loss(lr, hr, Charbonnier(), 0)
    final_only = Charbonnier()(model(lr), hr)
    assert one_level > final_only  # the x2 level's loss is added
