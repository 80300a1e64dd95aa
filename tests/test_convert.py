"""The authors' released checkpoints load onto superres's EDSR, RDN and RCAN: every known key
layout converts to identical outputs, the wrong architecture or scale is refused naming what
differs, and no file is ever unpickled beyond plain tensors."""

import os
import re

import pytest
import torch
from safetensors.torch import save_file

import superres
from layouts import relabel
from superres.models.convert import check_release, convert_state_dict, load_released
from superres.models.convert.edsr import LAYOUTS, RELEASED, SPECS, convert_for
from superres.models.edsr import EDSR_BASELINE, edsr
from superres.models.rcan import rcan
from superres.models.rdn import rdn
from superres.nn.frameworks import MeanShift
from superres.nn.upsamplers import sub_pixel_factors
from superres.weights import read_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")


def edsr_pytorch(state: dict) -> dict:
    """EDSR-PyTorch's layout, which yulunzhang/RCAN's code shares."""
    return relabel(state, [
        (r"(sub_mean|add_mean)\.(.+)", r"\1.\2"),
        (r"head\.(.+)", r"head.0.\1"),
        (r"body\.body\.(.+)\.excite\.(.+)", r"body.\1.conv_du.\2"),
        (r"body\.body\.(.+)", r"body.\1"),
        (r"upsampler\.0\.(\d+)\.0\.(.+)", lambda m: f"tail.0.{2 * int(m[1])}.{m[2]}"),
        (r"upsampler\.1\.(.+)", r"tail.1.\1"),
    ])


def rdn_edsr_pytorch(state: dict, scale: int) -> dict:
    output = 2 * len(sub_pixel_factors(scale))  # UPNet: conv, shuffle per stage, then conv
    return relabel(state, [
        (r"(sub_mean|add_mean)\..+", None),
        (r"head\.(.+)", r"SFENet1.\1"),
        (r"body\.body\.0\.(.+)", r"SFENet2.\1"),
        (r"body\.body\.1\.blocks\.(\d+)\.body\.dense\.(\d+)\.conv\.(.+)",
         r"RDBs.\1.convs.\2.conv.0.\3"),
        (r"body\.body\.1\.blocks\.(\d+)\.body\.fusion\.(.+)", r"RDBs.\1.LFF.\2"),
        (r"body\.body\.1\.fusion\.(\d)\.(.+)", r"GFF.\1.\2"),
        (r"upsampler\.0\.(\d+)\.0\.(.+)", lambda m: f"UPNet.{2 * int(m[1])}.{m[2]}"),
        (r"upsampler\.1\.(.+)", rf"UPNet.{output}.\1"),
    ])


def rdn_yjn870(state: dict) -> dict:
    """yjn870/RDN-pytorch's layout, which torchSR's RDN re-release keeps."""
    return relabel(state, [
        (r"(sub_mean|add_mean)\..+", None),
        (r"head\.(.+)", r"sfe1.\1"),
        (r"body\.body\.0\.(.+)", r"sfe2.\1"),
        (r"body\.body\.1\.blocks\.(\d+)\.body\.dense\.(\d+)\.conv\.(.+)",
         r"rdbs.\1.layers.\2.conv.\3"),
        (r"body\.body\.1\.blocks\.(\d+)\.body\.fusion\.(.+)", r"rdbs.\1.lff.\2"),
        (r"body\.body\.1\.fusion\.(\d)\.(.+)", r"gff.\1.\2"),
        (r"upsampler\.0\.(\d+)\.0\.(.+)", lambda m: f"upscale.{2 * int(m[1])}.{m[2]}"),
        (r"upsampler\.1\.(.+)", r"output.\1"),
    ])


BASICSR_ENDS = [
    (r"(sub_mean|add_mean)\..+", None),  # BasicSR keeps the mean as a plain attribute
    (r"head\.(.+)", r"conv_first.\1"),
    (r"upsampler\.0\.(\d+)\.0\.(.+)", lambda m: f"upsample.{2 * int(m[1])}.{m[2]}"),
    (r"upsampler\.1\.(.+)", r"conv_last.\1"),
]


def basicsr_edsr(state: dict, blocks: int) -> dict:
    return relabel(state, [
        *BASICSR_ENDS,
        (rf"body\.body\.{blocks}\.(.+)", r"conv_after_body.\1"),
        (r"body\.body\.(\d+)\.body\.([02])\.(.+)",
         lambda m: f"body.{m[1]}.conv{int(m[2]) // 2 + 1}.{m[3]}"),
    ])


def basicsr_rcan(state: dict, groups: int, blocks: int) -> dict:
    return relabel(state, [
        *BASICSR_ENDS,
        (rf"body\.body\.{groups}\.(.+)", r"conv_after_body.\1"),
        (rf"body\.body\.(\d+)\.body\.{blocks}\.(.+)", r"body.\1.conv.\2"),
        (r"body\.body\.(\d+)\.body\.(\d+)\.body\.([02])\.(.+)",
         r"body.\1.residual_group.\2.rcab.\3.\4"),
        (r"body\.body\.(\d+)\.body\.(\d+)\.body\.3\.excite\.([02])\.(.+)",
         lambda m: f"body.{m[1]}.residual_group.{m[2]}.rcab.3.attention.{int(m[3]) + 1}.{m[4]}"),
    ])


def outputs_equal(a: torch.nn.Module, b: torch.nn.Module, exact: bool = True) -> bool:
    x = torch.rand(1, 3, 9, 7, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ya, yb = a.eval()(x), b.eval()(x)
    return torch.equal(ya, yb) if exact else torch.allclose(ya, yb, rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module")
def baseline_x2() -> torch.nn.Module:
    """EDSR baseline x2 whose mean shift drifted in training, as the official layer allowed."""
    torch.manual_seed(0)
    model = EDSR_BASELINE.build(2)
    with torch.no_grad():
        model.sub_mean.weight += 0.01 * torch.randn(3, 3, 1, 1)
        model.add_mean.bias += 0.5
    return model


def test_edsr_pytorch_keys_are_the_official_ones():
    official = edsr_pytorch(EDSR_BASELINE.build(2).state_dict())
    expected = {f"{layer}.{p}" for p in ("weight", "bias") for layer in (
        "sub_mean", "add_mean", "head.0", "body.16", "tail.0.0", "tail.1",
        *(f"body.{i}.body.{j}" for i in range(16) for j in (0, 2)))}
    assert set(official) == expected
    assert official["tail.0.0.weight"].shape == (256, 64, 3, 3)  # 64 x 2^2, then shuffle


def test_edsr_pytorch_checkpoint_gives_identical_outputs_mean_shift_included(baseline_x2):
    converted = convert_state_dict(edsr_pytorch(baseline_x2.state_dict()), "edsr-baseline", 2)
    assert torch.equal(converted["sub_mean.weight"], baseline_x2.sub_mean.weight)
    fresh = EDSR_BASELINE.build(2)
    fresh.load_state_dict(converted)
    assert outputs_equal(baseline_x2, fresh)


def test_official_rcan_layout_round_trips_with_identical_outputs():
    torch.manual_seed(0)
    model = rcan(3, groups=2, blocks=2, channels=32)
    official = edsr_pytorch(model.state_dict())
    # the keys spandrel recognises the official RCAN by
    assert {"head.0.weight", "tail.1.weight", "body.0.body.0.body.0.weight",
            "body.0.body.0.body.3.conv_du.0.weight", "body.0.body.2.weight",
            "body.2.weight"} <= set(official)
    fresh = rcan(3, groups=2, blocks=2, channels=32)
    fresh.load_state_dict(convert_for(official, fresh))
    assert outputs_equal(model, fresh)


def test_edsr_pytorch_rdn_layout_round_trips_at_x4_with_identical_outputs():
    torch.manual_seed(0)
    model = rdn(4, blocks=2, layers=3, growth=8, channels=16)
    official = rdn_edsr_pytorch(model.state_dict(), 4)
    assert {"SFENet1.weight", "SFENet2.weight", "RDBs.1.convs.2.conv.0.weight",
            "RDBs.1.LFF.weight", "GFF.0.weight", "GFF.1.weight", "UPNet.0.weight",
            "UPNet.2.weight", "UPNet.4.weight"} <= set(official)
    fresh = rdn(4, blocks=2, layers=3, growth=8, channels=16)
    fresh.load_state_dict(convert_for(official, fresh))
    assert outputs_equal(model, fresh)


def test_rdn_trained_on_0_1_images_gives_its_outputs_in_our_0_255_network():
    torch.manual_seed(0)
    trained = rdn(2, blocks=2, layers=3, growth=16, channels=16)
    # yjn870's RDN: the same convolutions applied to [0, 1] images directly
    trained.sub_mean, trained.add_mean = MeanShift(-1, 1.0, (0, 0, 0)), MeanShift(1, 1.0, (0, 0, 0))
    ours = rdn(2, blocks=2, layers=3, growth=16, channels=16)
    ours.load_state_dict(convert_for(rdn_yjn870(trained.state_dict()), ours))
    assert outputs_equal(trained, ours, exact=False)


def test_basicsr_edsr_and_rcan_load_from_params_ema_first():
    torch.manual_seed(0)
    model = edsr(4, blocks=2, channels=16)
    fresh = edsr(4, blocks=2, channels=16)
    fresh.load_state_dict(convert_for({"params": basicsr_edsr(model.state_dict(), 2)}, fresh))
    assert outputs_equal(model, fresh)

    model = rcan(2, groups=2, blocks=3, channels=32)
    ema = basicsr_rcan(model.state_dict(), 2, 3)
    stale = {k: torch.zeros_like(v) for k, v in ema.items()}
    fresh = rcan(2, groups=2, blocks=3, channels=32)
    fresh.load_state_dict(convert_for({"params": stale, "params_ema": ema}, fresh))
    assert outputs_equal(model, fresh)


@pytest.mark.parametrize(
    ("name", "scale", "layout"),
    [("edsr", 4, lambda sd, s: {"params": basicsr_edsr(sd, 32)}),
     ("rcan", 3, lambda sd, s: edsr_pytorch(sd)),
     ("rdn", 2, rdn_edsr_pytorch),
     ("rdn", 4, lambda sd, s: rdn_yjn870(sd))],
)
def test_full_size_checkpoints_map_onto_the_named_models(name, scale, layout):
    with torch.device("meta"):  # names and shapes only: no memory for 40M parameters
        ours = SPECS[name].build(scale).state_dict()
    converted = convert_state_dict(layout(ours, scale), name, scale)
    assert list(converted) == list(ours)
    assert all(converted[k].shape == v.shape for k, v in ours.items())


def test_a_checkpoint_of_another_architecture_is_refused_naming_it(baseline_x2):
    official = edsr_pytorch(baseline_x2.state_dict())
    with pytest.raises(ValueError, match=r"holds EDSR x2 \(blocks=16, channels=64\), but edsr x2 "
                       r"is EDSR x2 \(blocks=32, channels=256\)(.|\n)*head\.0\.weight \(64, 3, "):
        convert_state_dict(official, "edsr", 2)
    with pytest.raises(ValueError, match=r"but rcan x2 is RCAN x2 \(groups=10, blocks=20"):
        convert_state_dict(official, "rcan", 2)
    rdn_state = rdn_yjn870(rdn(2, blocks=2, layers=2, growth=8, channels=8).state_dict())
    with pytest.raises(ValueError, match=r"RDN-pytorch .* holds RDN x2 \(D=2, C=2, G=8, G0=8\)"):
        convert_state_dict(rdn_state, "rdn", 2)


def test_a_checkpoint_of_another_scale_is_refused_naming_its_upsampler(baseline_x2):
    official = edsr_pytorch(baseline_x2.state_dict())
    with pytest.raises(ValueError, match=r"is for x2 \(upsampler tail\.0\.0\.weight "
                       r"\(256, 64, 3, 3\)\), but edsr-baseline x4 is EDSR x4"):
        convert_state_dict(official, "edsr-baseline", 4)
    with pytest.raises(ValueError, match="supports scales 2, 3, 4, not 8"):
        convert_state_dict(official, "edsr-baseline", 8)


def test_missing_and_unexpected_keys_are_named(baseline_x2):
    official = edsr_pytorch(baseline_x2.state_dict())
    del official["body.3.body.2.weight"]
    official["tail.2.weight"] = torch.zeros(3)
    with pytest.raises(ValueError) as caught:
        convert_state_dict(official, "edsr-baseline", 2)
    assert re.search(r"missing.*body\.body\.3\.body\.2\.weight", str(caught.value))
    assert re.search(r"unexpected: tail\.2\.weight", str(caught.value))


def test_unknown_layouts_non_tensors_and_unknown_models_are_refused(baseline_x2):
    with pytest.raises(ValueError, match=r"known layout.*conv\.weight"):
        convert_state_dict({"conv.weight": torch.zeros(1)}, "edsr", 2)
    with pytest.raises(ValueError, match=r"head\.0\.weight are not tensors"):
        convert_state_dict({"head.0.weight": 3}, "edsr", 2)
    with pytest.raises(ValueError, match="no converter for 'drcn'"):
        convert_state_dict(edsr_pytorch(baseline_x2.state_dict()), "drcn", 2)


class Payload:
    """Pickles into a call of os.mkdir: what a malicious checkpoint would carry."""

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def __reduce__(self):
        return os.mkdir, (self.folder,)


def test_a_pickled_object_is_refused_and_never_run(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"head.0.weight": torch.zeros(1), "extra": Payload(str(tmp_path / "ran"))}, path)
    with pytest.raises(ValueError, match="refusing to unpickle"):
        read_checkpoint(path)
    assert not (tmp_path / "ran").exists()


def test_released_pt_and_safetensors_files_load(tmp_path, baseline_x2):
    official = edsr_pytorch(baseline_x2.state_dict())
    # the pre-zip serialisation of the 2017-2018 releases; a renamed file: no digest check
    torch.save(official, tmp_path / "edsr_baseline_x2.pt", _use_new_zipfile_serialization=False)
    assert check_release(tmp_path / "edsr_baseline_x2.pt") is None
    assert outputs_equal(load_released(tmp_path / "edsr_baseline_x2.pt", "edsr-baseline", 2),
                         baseline_x2)
    save_file(official, tmp_path / "edsr_baseline_x2.safetensors")
    assert outputs_equal(
        load_released(tmp_path / "edsr_baseline_x2.safetensors", "edsr-baseline", 2),
        baseline_x2)


def test_a_file_under_a_published_name_must_have_the_published_digest(tmp_path, baseline_x2):
    path = tmp_path / "edsr_baseline_x2-1bc95232.pt"
    torch.save(edsr_pytorch(baseline_x2.state_dict()), path)
    with pytest.raises(ValueError, match=r"sha256 .* starts with 1bc95232"):
        load_released(path, "edsr-baseline", 2)


def test_release_table_is_consistent():
    layouts = {layout.name for layout in LAYOUTS}
    for release in RELEASED:
        assert release.scale in SPECS[release.model].scales
        assert release.layout in layouts
        hex_in_name = re.search(r"-([0-9a-f]{8})\.pth?$", release.file)
        assert (hex_in_name[1] if hex_in_name else None) == release.sha256_prefix
        if release.sha256:
            assert release.sha256.startswith(release.sha256_prefix)
            assert len(release.sha256) == 64
    assert {(r.model, r.scale) for r in RELEASED} == {
        (name, scale) for name, spec in SPECS.items() for scale in spec.scales}


def test_convert_command_turns_an_official_checkpoint_into_usable_weights(tmp_path, capsys):
    from superres.cli import EXIT_FAILED, EXIT_OK, main

    model = superres.build("edsr-baseline", 2)
    torch.save(edsr_pytorch(model.state_dict()), tmp_path / "edsr_baseline_x2.pt")
    out = tmp_path / "edsr.safetensors"
    args = ["convert", str(tmp_path / "edsr_baseline_x2.pt"), "-m", "edsr-baseline", "-s", "2"]
    assert main([*args, "-o", str(out)]) == EXIT_OK
    up = superres.load("edsr-baseline", 2, weights=out)
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(up.model(x), model.eval()(x))
    args[-1] = "4"
    assert main([*args, "-o", str(tmp_path / "x4.safetensors")]) == EXIT_FAILED
    assert "x2" in capsys.readouterr().err
