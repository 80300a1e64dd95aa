"""The perceptual-SR models are the papers' and the released code's: SRResNet/SRGAN, ESRGAN's
RRDBNet and Real-ESRGAN's compact SRVGG have their parameter counts, upscale any size, and
load the released checkpoints of every known layout to the same outputs; the SRGAN and
ESRGAN discriminators judge their patch sizes; a checkpoint of another architecture, size or
scale is refused naming what differs."""

import re

import pytest
import torch
from torch.nn import functional as F

from layouts import relabel
from superres.models.convert import check_release, load_released
from superres.models.convert.gan import (
    LAYOUTS,
    RELEASED,
    SPECS,
    convert_for,
    convert_state_dict,
    describe,
    model_for,
)
from superres.models.discriminators import (
    esrgan_discriminator,
    srgan_discriminator,
    unet_discriminator,
)
from superres.models.esrgan import ESRGAN, RRDB, SRVGG, rrdbnet, srvgg
from superres.models.srresnet import SRGAN, SRRESNET, srresnet
from superres.train.recipe import load_recipe
from superres.weights import read_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")


def params(build, *args, **kwargs) -> int:
    """Trainable parameters, counted on the meta device (no memory, no initialisation)."""
    with torch.device("meta"):
        model = build(*args, **kwargs)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def conv(k: int, cin: int, cout: int, bias: bool = True) -> int:
    """Parameters of a k x k convolution from cin to cout channels."""
    return k * k * cin * cout + (cout if bias else 0)


# ---------------------------------------------------------------- parameter counts


def test_srresnet_x4_has_1548547_parameters_from_the_papers_layer_list():
    head = conv(9, 3, 64) + 64  # k9n64s1 + PReLU (one slope per channel)
    block = 2 * (conv(3, 64, 64, bias=False) + 2 * 64) + 64  # (conv-BN) PReLU (conv-BN)
    trunk_end = conv(3, 64, 64, bias=False) + 2 * 64  # conv-BN before the long skip
    stage = conv(3, 64, 256) + 64  # k3n256s1, pixel shuffle x2, PReLU
    tail = conv(9, 64, 3)
    assert head + 16 * block + trunk_end + 2 * stage + tail == 1_548_547
    assert params(srresnet, 4) == SRRESNET.params(4) == SRGAN.params(4) == 1_548_547
    assert f"{1_548_547 / 1e6:.1f}M" == "1.5M"  # the paper's "~1.5M" (recalled)
    assert params(srresnet, 2) == 1_548_547 - stage == 1_400_771  # one sub-pixel stage


def test_rrdb_and_esrgan_have_the_published_16697987_parameters():
    rdb = sum(conv(3, 64 + i * 32, 32) for i in range(4)) + conv(3, 64 + 4 * 32, 64)
    assert 1_792 + 23 * 3 * rdb + 4 * conv(3, 64, 64) + conv(3, 64, 3) == 16_697_987
    assert RRDB.params(4) == ESRGAN.params(4) == 16_697_987


@pytest.mark.parametrize(("scale", "expected"), [(2, 600_652), (3, 609_307), (4, 621_424)])
def test_srvgg_parameters_follow_its_layer_list(scale, expected):
    # first conv + PReLU, 16 x (conv + PReLU), last conv to 3 x scale^2; x4: 621,424 as
    # listed for realesr-animevideov3 in public Real-ESRGAN ports
    body = conv(3, 3, 64) + 64 + 16 * (conv(3, 64, 64) + 64)
    assert SRVGG.params(scale) == body + conv(3, 64, 3 * scale**2) == expected


def test_srvgg_with_32_convolutions_is_realesr_general_x4v3_size():
    assert params(srvgg, 4, convs=32) == 1_213_296  # as public ports list it


def test_srgan_discriminator_has_23563649_parameters():
    widths = [(64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 512), (512, 512)]
    convs = conv(3, 3, 64) + sum(conv(3, a, b, bias=False) + 2 * b for a, b in widths)
    dense = 512 * 6 * 6 * 1024 + 1024 + 1024 + 1  # 96 / 2^4 = 6
    assert params(srgan_discriminator) == convs + dense == 23_563_649


def test_esrgan_vgg128_discriminator_has_14499401_parameters():
    pairs = [(3, 64, 64), (4, 64, 64), (3, 64, 128), (4, 128, 128), (3, 128, 256),
             (4, 256, 256), (3, 256, 512), (4, 512, 512), (3, 512, 512), (4, 512, 512)]
    convs = conv(3, 3, 64) + sum(conv(k, a, b, bias=False) + 2 * b for k, a, b in pairs[1:])
    dense = 512 * 4 * 4 * 100 + 100 + 100 + 1  # 128 / 2^5 = 4
    assert params(esrgan_discriminator) == convs + dense == 14_499_401


def test_realesrgan_unet_discriminator_has_4376897_parameters():
    down = conv(4, 64, 128, False) + conv(4, 128, 256, False) + conv(4, 256, 512, False)
    up = conv(3, 512, 256, False) + conv(3, 256, 128, False) + conv(3, 128, 64, False)
    head = 2 * conv(3, 64, 64, False) + conv(3, 64, 1)
    assert params(unet_discriminator) == conv(3, 3, 64) + down + up + head == 4_376_897


def test_unet_discriminator_judges_every_pixel_with_spectrally_normalised_convs():
    torch.manual_seed(0)
    discriminator = unet_discriminator(width=8)
    for _ in range(30):  # power iterations run in training mode
        discriminator(torch.rand(1, 3, 16, 24))
    assert discriminator(torch.rand(2, 3, 16, 24)).shape == (2, 1, 16, 24)
    for conv_layer in discriminator.down:
        sigma = torch.linalg.matrix_norm(conv_layer.weight.detach().flatten(1), ord=2)
        assert sigma == pytest.approx(1.0, abs=0.05)
    with pytest.raises(ValueError, match="multiples of 8, not 16x20"):
        discriminator(torch.rand(1, 3, 16, 20))
    with pytest.raises(ValueError, match="multiple of 8, not 36"):
        unet_discriminator(36)


# ---------------------------------------------------------------- shapes


@pytest.mark.parametrize(("spec", "scale"),
                         [(SRRESNET, 2), (SRRESNET, 4), (SRVGG, 2), (SRVGG, 3), (SRVGG, 4),
                          (RRDB, 4)])
def test_output_is_scale_times_the_input(spec, scale):
    with torch.no_grad():
        out = spec.build(scale).eval()(torch.rand(1, 3, 5, 7))
    assert out.shape == (1, 3, 5 * scale, 7 * scale)


def test_rrdbnet_upsamples_in_x2_stages_only():
    assert rrdbnet(8, blocks=1, channels=8, growth=4)(torch.rand(1, 3, 3, 2)).shape[-2:] == (24, 16)
    with pytest.raises(ValueError, match="power of two"):
        rrdbnet(3)


@pytest.mark.parametrize(("build", "patch"),
                         [(srgan_discriminator, 96), (esrgan_discriminator, 128)])
def test_discriminators_give_one_logit_per_patch_of_their_size(build, patch):
    discriminator = build().eval()
    with torch.no_grad():
        assert discriminator(torch.rand(2, 3, patch, patch)).shape == (2, 1)
        with pytest.raises(ValueError, match=f"{patch}x{patch} patches, not 64x64"):
            discriminator(torch.rand(2, 3, 64, 64))


def test_esrgan_discriminator_takes_128_or_256_patches():
    assert esrgan_discriminator(256).patch == 256
    with pytest.raises(ValueError, match="128x128 or 256x256"):
        esrgan_discriminator(96)


# ---------------------------------------------------------------- released layouts

TINY_RRDB = {"blocks": 2, "channels": 8, "growth": 4}


def rdb_names(rdb: str, conv: str) -> list:
    """Rules for our RRDB trunk keys -> official `{block}.RDB{r}.conv{i}` names, where `rdb`
    and `conv` format the official prefix and conv suffix."""
    trunk = r"body\.1\.body\.(\d+)\.body\.(\d)\.body"
    return [
        (rf"{trunk}\.dense\.(\d)\.conv\.(.+)",
         lambda m: f"{rdb.format(m[1], int(m[2]) + 1)}.{conv.format(int(m[3]) + 1)}.{m[4]}"),
        (rf"{trunk}\.fusion\.(.+)",
         lambda m: f"{rdb.format(m[1], int(m[2]) + 1)}.{conv.format(5)}.{m[3]}"),
    ]


def esrgan_layout(state: dict, blocks: int, stages: int) -> dict:
    """xinntao/ESRGAN's RRDBNet_arch.py names."""
    return relabel(state, [
        (r"body\.0\.(.+)", r"conv_first.\1"),
        *rdb_names("RRDB_trunk.{}.RDB{}", "conv{}"),
        (rf"body\.1\.body\.{blocks}\.(.+)", r"trunk_conv.\1"),
        (r"upsampler\.(\d+)\.1\.(.+)", lambda m: f"upconv{int(m[1]) + 1}.{m[2]}"),
        (rf"upsampler\.{stages}\.(.+)", r"HRconv.\1"),
        (rf"upsampler\.{stages + 2}\.(.+)", r"conv_last.\1"),
    ])


def esrgan_2018_layout(state: dict, blocks: int, stages: int) -> dict:
    """The first ESRGAN release's flat Sequential (architecture.py / block.py)."""
    return relabel(state, [
        (r"body\.0\.(.+)", r"model.0.\1"),
        *rdb_names("model.1.sub.{}.RDB{}", "conv{}.0"),
        (rf"body\.1\.body\.{blocks}\.(.+)", rf"model.1.sub.{blocks}.\1"),
        (r"upsampler\.(\d+)\.1\.(.+)", lambda m: f"model.{3 * int(m[1]) + 3}.{m[2]}"),
        (rf"upsampler\.{stages}\.(.+)", rf"model.{3 * stages + 2}.\1"),
        (rf"upsampler\.{stages + 2}\.(.+)", rf"model.{3 * stages + 4}.\1"),
    ])


def basicsr_layout(state: dict, blocks: int) -> dict:
    """BasicSR's rrdbnet_arch.py names (x4: two conv_up stages)."""
    return relabel(state, [
        (r"body\.0\.(.+)", r"conv_first.\1"),
        *rdb_names("body.{}.rdb{}", "conv{}"),
        (rf"body\.1\.body\.{blocks}\.(.+)", r"conv_body.\1"),
        (r"upsampler\.(\d+)\.1\.(.+)", lambda m: f"conv_up{int(m[1]) + 1}.{m[2]}"),
        (r"upsampler\.2\.(.+)", r"conv_hr.\1"),
        (r"upsampler\.4\.(.+)", r"conv_last.\1"),
    ])


def srvgg_layout(state: dict, convs: int) -> dict:
    """Real-ESRGAN's srvgg_arch.py: one ModuleList `body`, the sub-pixel conv last."""
    return relabel(state, [
        (r"body\.body\.(\d+)\.(.+)", r"body.\1.\2"),
        (r"body\.upsampler\.0\.(.+)", rf"body.{2 * convs + 2}.\1"),
    ])


def srgan_pytorch_layout(state: dict, blocks: int, stages: int) -> dict:
    """Lornatang/SRGAN-PyTorch's SRResNet, with its single shared PReLU slopes."""
    block = {"0.0": 0, "0.1": 1, "1": 2, "2.0": 3, "2.1": 4}
    out = relabel(state, [
        (r"body\.0\.(\d)\.(.+)", r"conv1.\1.\2"),
        (rf"body\.1\.body\.{blocks}\.(\d)\.(.+)", r"conv2.\1.\2"),
        (r"body\.1\.body\.(\d+)\.body\.(0\.0|0\.1|1|2\.0|2\.1)\.(.+)",
         lambda m: f"trunk.{m[1]}.rcb.{block[m[2]]}.{m[3]}"),
        (r"upsampler\.(\d+)\.0\.0\.(.+)", r"upsampling.\1.upsample_block.0.\2"),
        (r"upsampler\.(\d+)\.1\.(.+)", r"upsampling.\1.upsample_block.2.\2"),
        (rf"upsampler\.{stages}\.(.+)", r"conv3.\1"),
    ])
    slope = (r"conv1\.1\.weight|trunk\.\d+\.rcb\.2\.weight"
             r"|upsampling\.\d+\.upsample_block\.2\.weight")
    return {k: v[:1] if re.fullmatch(slope, k) else v for k, v in out.items()}


def randomised(model: torch.nn.Module) -> torch.nn.Module:
    """`model` in eval mode with random batch-norm statistics and affine parameters, and
    one shared value per PReLU (as a single-slope checkpoint holds), so that a conversion
    that drops or misplaces any of them changes the output."""
    generator = torch.Generator().manual_seed(0)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            for tensor in (module.running_mean, module.weight, module.bias):
                tensor.data = 0.1 * torch.randn(tensor.shape, generator=generator)
            module.running_var.data = 0.5 + torch.rand(module.running_var.shape,
                                                       generator=generator)
        elif isinstance(module, torch.nn.PReLU):
            module.weight.data.fill_(torch.rand((), generator=generator).item())
    return model.eval()


def same_outputs(model: torch.nn.Module, converted: dict, fresh: torch.nn.Module) -> None:
    fresh.load_state_dict(converted)
    x = torch.rand(1, 3, 6, 5, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(fresh.eval()(x), model.eval()(x))


@pytest.mark.parametrize("layout", ["ESRGAN", "ESRGAN 2018", "BasicSR"])
def test_every_rrdbnet_layout_converts_to_identical_outputs(layout):
    model = rrdbnet(4, **TINY_RRDB)
    state = model.state_dict()
    official = {
        "ESRGAN": lambda: esrgan_layout(state, 2, 2),
        "ESRGAN 2018": lambda: {f"module.{k}": v
                                for k, v in esrgan_2018_layout(state, 2, 2).items()},
        "BasicSR": lambda: {"params_ema": basicsr_layout(state, 2), "params": {}},
    }[layout]()
    same_outputs(model, convert_for(official, rrdbnet(4, **TINY_RRDB)), rrdbnet(4, **TINY_RRDB))


def test_srvgg_layout_converts_to_identical_outputs():
    model = randomised(srvgg(3, convs=3, channels=8))
    official = {"params": srvgg_layout(model.state_dict(), convs=3)}
    assert list(official["params"])[-2:] == ["body.8.weight", "body.8.bias"]
    same_outputs(model, convert_for(official, srvgg(3, convs=3, channels=8)),
                 srvgg(3, convs=3, channels=8))


def test_srgan_pytorch_layout_converts_to_identical_outputs(tmp_path):
    model = randomised(srresnet(4, blocks=2, channels=8))
    state = srgan_pytorch_layout(model.state_dict(), blocks=2, stages=2)
    assert {v.shape for k, v in state.items() if k.endswith("2.weight")
            and v.ndim == 1} == {(1,)} == {state["conv1.1.weight"].shape}
    path = tmp_path / "SRResNet_x4.pth"  # its training checkpoint, read without unpickling
    torch.save({"epoch": 3, "best_psnr": 31.2, "state_dict": state}, path)
    converted = convert_for(read_checkpoint(path), srresnet(4, blocks=2, channels=8))
    same_outputs(model, converted, srresnet(4, blocks=2, channels=8))


# The official forward passes, written from the released code over its own key names: the
# conversions must reproduce the authors' function, not just undo our own renaming.


def esrgan_forward(state: dict, x: torch.Tensor, blocks: int) -> torch.Tensor:
    def c(t, name):
        return F.conv2d(t, state[f"{name}.weight"], state[f"{name}.bias"], padding=1)

    def lrelu(t):
        return F.leaky_relu(t, 0.2)

    feat = trunk = c(x, "conv_first")
    for b in range(blocks):
        rrdb_in = trunk
        for r in (1, 2, 3):
            dense = [trunk]
            for i in range(1, 5):
                dense.append(lrelu(c(torch.cat(dense, 1), f"RRDB_trunk.{b}.RDB{r}.conv{i}")))
            trunk = c(torch.cat(dense, 1), f"RRDB_trunk.{b}.RDB{r}.conv5") * 0.2 + trunk
        trunk = trunk * 0.2 + rrdb_in
    feat = feat + c(trunk, "trunk_conv")
    for up in ("upconv1", "upconv2"):
        feat = lrelu(c(F.interpolate(feat, scale_factor=2, mode="nearest"), up))
    return c(lrelu(c(feat, "HRconv")), "conv_last")


def srvgg_forward(state: dict, x: torch.Tensor, convs: int, scale: int) -> torch.Tensor:
    out = x
    for i in range(0, 2 * convs + 2, 2):
        out = F.conv2d(out, state[f"body.{i}.weight"], state[f"body.{i}.bias"], padding=1)
        out = F.prelu(out, state[f"body.{i + 1}.weight"])
    last = 2 * convs + 2
    out = F.conv2d(out, state[f"body.{last}.weight"], state[f"body.{last}.bias"], padding=1)
    return F.pixel_shuffle(out, scale) + F.interpolate(x, scale_factor=scale, mode="nearest")


def srgan_pytorch_forward(state: dict, x: torch.Tensor, blocks: int) -> torch.Tensor:
    def c(t, name, pad=1):
        return F.conv2d(t, state[f"{name}.weight"], state.get(f"{name}.bias"), padding=pad)

    def bn(t, name):
        return F.batch_norm(t, state[f"{name}.running_mean"], state[f"{name}.running_var"],
                            state[f"{name}.weight"], state[f"{name}.bias"], False, 0.0, 1e-5)

    head = out = F.prelu(c(x, "conv1.0", 4), state["conv1.1.weight"])
    for b in range(blocks):
        rcb = f"trunk.{b}.rcb"
        y = F.prelu(bn(c(out, f"{rcb}.0"), f"{rcb}.1"), state[f"{rcb}.2.weight"])
        out = bn(c(y, f"{rcb}.3"), f"{rcb}.4") + out
    out = head + bn(c(out, "conv2.0"), "conv2.1")
    for s in (0, 1):
        block = f"upsampling.{s}.upsample_block"
        out = F.prelu(F.pixel_shuffle(c(out, f"{block}.0"), 2), state[f"{block}.2.weight"])
    return c(out, "conv3", 4)  # the port clamps to [0, 1] here; superres's Upscaler does


def random_state(state: dict) -> dict:
    """Random tensors of the same shapes: weights no initialisation would produce."""
    generator = torch.Generator().manual_seed(2)
    return {k: (0.5 + torch.rand(v.shape, generator=generator)) if "running_var" in k
            else v if v.dtype == torch.long else 0.2 * torch.randn(v.shape, generator=generator)
            for k, v in state.items()}


def test_converted_esrgan_computes_the_official_rrdbnet():
    official = random_state(esrgan_layout(rrdbnet(4, **TINY_RRDB).state_dict(), 2, 2))
    model = rrdbnet(4, **TINY_RRDB)
    model.load_state_dict(convert_for(official, model))
    x = torch.rand(1, 3, 5, 4)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), esrgan_forward(official, x, blocks=2))


def test_converted_srvgg_computes_the_official_srvggnetcompact():
    official = random_state(srvgg_layout(srvgg(4, convs=3, channels=8).state_dict(), convs=3))
    model = srvgg(4, convs=3, channels=8)
    model.load_state_dict(convert_for(official, model))
    x = torch.rand(1, 3, 5, 4)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), srvgg_forward(official, x, 3, 4))


def test_converted_srresnet_computes_the_srgan_pytorch_network():
    ours = srresnet(4, blocks=2, channels=8).state_dict()
    official = random_state(srgan_pytorch_layout(ours, blocks=2, stages=2))
    model = srresnet(4, blocks=2, channels=8)
    model.load_state_dict(convert_for(official, model))
    x = torch.rand(1, 3, 5, 4)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), srgan_pytorch_forward(official, x, 2))


def test_registered_models_convert_at_full_size():
    state = {"params": srvgg_layout(SRVGG.build(4).state_dict(), convs=16)}
    assert describe(convert_state_dict(state, "srvgg", 4)).sizes == (("convs", 16),
                                                                        ("channels", 64))
    lornatang = srgan_pytorch_layout(SRRESNET.build(4).state_dict(), blocks=16, stages=2)
    assert len(convert_state_dict({"state_dict": lornatang}, "srgan", 4)) == len(
        SRRESNET.build(4).state_dict())


def test_model_for_builds_the_sizes_a_checkpoint_holds():
    official = {"params": srvgg_layout(srvgg(4, convs=5, channels=8).state_dict(), convs=5)}
    model, found = model_for(official)
    assert (found.family, found.scale, found.sizes) == ("srvgg", 4, (("convs", 5),
                                                                      ("channels", 8)))
    assert model(torch.rand(1, 3, 3, 3)).shape == (1, 3, 12, 12)


def test_load_released_reads_a_file_into_the_registered_model(tmp_path):
    path = tmp_path / "realesr-compact.pth"
    torch.save({"params": srvgg_layout(SRVGG.build(2).state_dict(), convs=16)}, path)
    model = load_released(path, "srvgg", 2)
    assert not model.training and model(torch.rand(1, 3, 4, 4)).shape == (1, 3, 8, 8)


# ---------------------------------------------------------------- refusals


def test_an_x2_checkpoint_is_refused_for_x4_naming_its_upsampler():
    official = esrgan_2018_layout(rrdbnet(2, **TINY_RRDB).state_dict(), 2, 1)
    with pytest.raises(ValueError, match=r"ESRGAN 2018 checkpoint is for x2 \(upsampler "
                                         r"model\.3\.weight \(8, 8, 3, 3\)\), but the model is "
                                         r"RRDB x4") as err:
        convert_for(official, rrdbnet(4, **TINY_RRDB))
    assert "missing (our names): upsampler.1.1.weight" in str(err.value)


def test_another_size_is_refused_with_both_descriptions():
    official = basicsr_layout(rrdbnet(4, **TINY_RRDB).state_dict(), 2)
    with pytest.raises(ValueError, match=r"holds RRDB x4 \(blocks=2, channels=8, growth=4\), "
                                         r"but esrgan x4 is RRDB x4 \(blocks=23, channels=64, "
                                         r"growth=32\)\n  missing"):
        convert_state_dict(official, "esrgan", 4)


def test_another_architecture_is_refused():
    official = {"params": srvgg_layout(srvgg(4).state_dict(), convs=16)}
    with pytest.raises(ValueError, match=r"Real-ESRGAN SRVGG checkpoint holds SRVGG x4 "
                                         r"\(convs=16, channels=64\), but rrdb x4 is RRDB x4"):
        convert_state_dict(official, "rrdb", 4)


def test_srvgg_of_another_scale_is_refused_naming_its_last_conv():
    official = srvgg_layout(srvgg(3, convs=16).state_dict(), convs=16)
    with pytest.raises(ValueError, match=r"is for x3 \(upsampler body\.34\.weight "
                                         r"\(27, 64, 3, 3\)\), but srvgg x4"):
        convert_state_dict(official, "srvgg", 4)


def test_more_srvgg_convolutions_than_registered_are_refused():
    official = srvgg_layout(srvgg(4, convs=32, channels=8).state_dict(), convs=32)
    with pytest.raises(ValueError, match=r"holds SRVGG x4 \(convs=32, channels=8\)"):
        convert_for(official, srvgg(4, convs=16, channels=8))


def test_pixel_unshuffle_rrdbnet_is_refused_as_such():
    official = basicsr_layout(rrdbnet(4, **TINY_RRDB).state_dict(), 2)
    official["conv_first.weight"] = torch.zeros(8, 12, 3, 3)  # RealESRGAN_x2plus's input
    with pytest.raises(ValueError, match=r"conv_first\.weight \(8, 12, 3, 3\) takes 12 input "
                                         r"channels: BasicSR's pixel-unshuffle RRDBNet"):
        convert_for(official, rrdbnet(4, **TINY_RRDB))


def test_an_unknown_layout_is_refused_listing_the_known_ones():
    with pytest.raises(ValueError, match=r"known layout.*head\.0\.weight.*SRGAN-PyTorch: "
                                         r"trunk\.0\.rcb\.0\.weight"):
        convert_state_dict({"head.0.weight": torch.zeros(1)}, "srresnet", 4)


def test_an_unconvertible_model_or_scale_is_refused():
    with pytest.raises(ValueError, match="no converter for 'edsr'"):
        convert_state_dict({}, "edsr", 4)
    with pytest.raises(ValueError, match="supports scales 4, not 2"):
        convert_state_dict({}, "esrgan", 2)


def test_a_file_under_a_published_name_must_match_its_digest(tmp_path):
    path = tmp_path / "ESRGAN_PSNR_SRx4_DF2K_official-150ff491.pth"
    path.write_bytes(b"not the authors' file")
    with pytest.raises(ValueError, match="starts with 150ff491"):
        check_release(path)
    other = tmp_path / "mine.pth"
    other.write_bytes(b"")
    assert check_release(other) is None


def test_the_release_table_names_known_models_layouts_and_only_published_digests():
    layouts = {layout.name for layout in LAYOUTS}
    for release in RELEASED:
        SPECS[release.model].check_scale(release.scale)
        assert release.layout in layouts and release.url.startswith("https://")
        assert release.sha256 is None  # none is published in full
        if release.sha256_prefix:  # BasicSR's names end in the digest's first 8 hex digits
            assert release.file.removesuffix(".pth").endswith(f"-{release.sha256_prefix}")


# ---------------------------------------------------------------- training


@pytest.mark.parametrize("name", ["srresnet_x4", "rrdb_x4", "srvgg_x4"])
def test_recipes_parse_for_a_model_and_scale_that_exist(name):
    recipe = load_recipe(name)
    SPECS[recipe.model].check_scale(recipe.scale)


def test_srvgg_starts_from_the_nearest_enlargement_and_learns():
    """At full depth PyTorch's default init starves the first layer of gradient (~1e-8);
    the He init keeps it trainable and the output starts at the nearest-neighbour copy."""
    torch.manual_seed(0)
    model = SRVGG.build(4)
    generator = torch.Generator().manual_seed(1)
    hr = F.interpolate(torch.rand(4, 3, 12, 12, generator=generator), scale_factor=4,
                       mode="bicubic").clamp(0, 1)
    lr = F.avg_pool2d(hr, 4)
    nearest = F.interpolate(lr, scale_factor=4, mode="nearest")
    assert (model(lr) - nearest).abs().max() < 0.05
    optimizer = torch.optim.Adam(model.parameters(), 5e-4)
    losses = []
    for _ in range(25):
        loss = (model(lr) - hr).abs().mean()
        optimizer.zero_grad()
        loss.backward()
        first = model.body.body[0].weight.grad.norm().item()
        optimizer.step()
        losses.append(loss.item())
    assert first > 1e-4
    assert losses[-1] < 0.8 * min(losses[0], F.l1_loss(nearest, hr).item())
