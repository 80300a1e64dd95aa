"""Popular PyTorch re-implementations' checkpoints load onto superres's models and compute
what the repositories' own networks compute: twtygqyy's whole pickled VDSR and LapSRN models
(read with an allow-list, never unpickled into code), yjn870's SRCNN, FSRCNN and ESPCN state
dicts, and both of leftthomas's SRGAN generators. The reference networks below are written
from the repositories' model code, under their module and class names."""

import math
import os
import pickle
import re
import sys
import types

import pytest
import torch
from safetensors import safe_open
from torch import nn
from torch.nn import functional as F

from superres.models.convert import convert_file
from superres.weights import ALLOWED_GLOBALS, read_checkpoint, read_pickled_model

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def converted_folder(tmp_path, monkeypatch):
    """Weights converted on the fly go to a temporary folder, not the user's cache."""
    monkeypatch.setenv("SUPERRES_CONVERTED", str(tmp_path / "converted"))
    return tmp_path / "converted"


# ---------------------------------------------------------------- the repositories' networks


class ConvReLUBlock(nn.Module):  # twtygqyy/pytorch-vdsr vdsr.Conv_ReLU_Block
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(64, 64, 3, 1, 1, bias=False)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(self.conv(x))


class VDSRNet(nn.Module):  # vdsr.Net
    def __init__(self) -> None:
        super().__init__()
        self.residual_layer = nn.Sequential(*(ConvReLUBlock() for _ in range(18)))
        self.input = nn.Conv2d(1, 64, 3, 1, 1, bias=False)
        self.output = nn.Conv2d(64, 1, 3, 1, 1, bias=False)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        out = self.output(self.residual_layer(self.relu(self.input(x))))
        return out + x


class ConvBlock(nn.Module):  # twtygqyy/pytorch-LapSRN lapsrn._Conv_Block
    def __init__(self) -> None:
        super().__init__()
        layers = [m for _ in range(10) for m in (nn.Conv2d(64, 64, 3, 1, 1, bias=False),
                                                 nn.LeakyReLU(0.2, inplace=True))]
        self.cov_block = nn.Sequential(*layers, nn.ConvTranspose2d(64, 64, 4, 2, 1, bias=False),
                                       nn.LeakyReLU(0.2, inplace=True))

    def forward(self, x):
        return self.cov_block(x)


class LapSRNNet(nn.Module):  # lapsrn.Net (x4)
    def __init__(self) -> None:
        super().__init__()
        self.conv_input = nn.Conv2d(1, 64, 3, 1, 1, bias=False)
        self.relu = nn.LeakyReLU(0.2, inplace=True)
        for n in (1, 2):
            setattr(self, f"convt_I{n}", nn.ConvTranspose2d(1, 1, 4, 2, 1, bias=False))
            setattr(self, f"convt_R{n}", nn.Conv2d(64, 1, 3, 1, 1, bias=False))
            setattr(self, f"convt_F{n}", nn.Sequential(ConvBlock()))

    def forward(self, x):
        features = self.relu(self.conv_input(x))
        features = self.convt_F1(features)
        hr2 = self.convt_I1(x) + self.convt_R1(features)
        features = self.convt_F2(features)
        return self.convt_I2(hr2) + self.convt_R2(features)


class YjnSRCNN(nn.Module):  # yjn870/SRCNN-pytorch models.SRCNN
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 64, 9, padding=4)
        self.conv2 = nn.Conv2d(64, 32, 5, padding=2)
        self.conv3 = nn.Conv2d(32, 1, 5, padding=2)

    def forward(self, x):
        return self.conv3(F.relu(self.conv2(F.relu(self.conv1(x)))))


class YjnFSRCNN(nn.Module):  # yjn870/FSRCNN-pytorch models.FSRCNN
    def __init__(self, scale: int, d: int = 56, s: int = 12, m: int = 4) -> None:
        super().__init__()
        self.first_part = nn.Sequential(nn.Conv2d(1, d, 5, padding=2), nn.PReLU(d))
        mid = [nn.Conv2d(d, s, 1), nn.PReLU(s)]
        for _ in range(m):
            mid += [nn.Conv2d(s, s, 3, padding=1), nn.PReLU(s)]
        self.mid_part = nn.Sequential(*mid, nn.Conv2d(s, d, 1), nn.PReLU(d))
        self.last_part = nn.ConvTranspose2d(d, 1, 9, stride=scale, padding=4,
                                            output_padding=scale - 1)

    def forward(self, x):
        return self.last_part(self.mid_part(self.first_part(x)))


class YjnESPCN(nn.Module):  # yjn870/ESPCN-pytorch models.ESPCN
    def __init__(self, scale: int) -> None:
        super().__init__()
        self.first_part = nn.Sequential(nn.Conv2d(1, 64, 5, padding=2), nn.Tanh(),
                                        nn.Conv2d(64, 32, 3, padding=1), nn.Tanh())
        self.last_part = nn.Sequential(nn.Conv2d(32, scale**2, 3, padding=1),
                                       nn.PixelShuffle(scale))

    def forward(self, x):
        return self.last_part(self.first_part(x))


class ResidualBlock(nn.Module):  # leftthomas/SRGAN model.ResidualBlock
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(channels)
        self.prelu = nn.PReLU()
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x):
        return x + self.bn2(self.conv2(self.prelu(self.bn1(self.conv1(x)))))


class UpsampleBLock(nn.Module):  # model.UpsampleBLock
    def __init__(self, channels: int, factor: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels * factor**2, 3, padding=1)
        self.pixel_shuffle = nn.PixelShuffle(factor)
        self.prelu = nn.PReLU()

    def forward(self, x):
        return self.prelu(self.pixel_shuffle(self.conv(x)))


class Generator(nn.Module):  # model.Generator: block7 conv-BN, or conv-PReLU (January 2018)
    def __init__(self, scale: int, prelu_block7: bool = False) -> None:
        super().__init__()
        self.block1 = nn.Sequential(nn.Conv2d(3, 64, 9, padding=4), nn.PReLU())
        for n in range(2, 7):
            setattr(self, f"block{n}", ResidualBlock(64))
        self.block7 = nn.Sequential(nn.Conv2d(64, 64, 3, padding=1),
                                    nn.PReLU() if prelu_block7 else nn.BatchNorm2d(64))
        stages = [UpsampleBLock(64, 2) for _ in range(int(math.log2(scale)))]
        self.block8 = nn.Sequential(*stages, nn.Conv2d(64, 3, 9, padding=4))

    def forward(self, x):
        block1 = self.block1(x)
        trunk = block1
        for n in range(2, 7):
            trunk = getattr(self, f"block{n}")(trunk)
        return (torch.tanh(self.block8(block1 + self.block7(trunk))) + 1) / 2


def trained_like(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights of a trained network's scale, and batch-norm statistics that matter."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point():
                noise = torch.randn(tensor.shape, generator=generator)
                if name.endswith("running_var"):
                    tensor.copy_(0.5 + noise.abs())
                else:
                    fan = tensor[0].numel() if tensor.ndim > 1 else 1
                    tensor.copy_(noise * (0.5 if tensor.ndim == 1 else 1 / math.sqrt(fan)))
    return model.eval()


def as_module(name: str, **classes: type) -> types.ModuleType:
    """A module `name` holding `classes` under the repositories' class names, so that pickle
    records them as the repositories' training scripts did."""
    module = types.ModuleType(name)
    for qualname, cls in classes.items():
        cls.__module__, cls.__qualname__, cls.__name__ = name, qualname, qualname
        setattr(module, qualname, cls)
    return module


@pytest.fixture
def repo_modules(monkeypatch):
    monkeypatch.setitem(sys.modules, "vdsr",
                        as_module("vdsr", Net=VDSRNet, Conv_ReLU_Block=ConvReLUBlock))
    monkeypatch.setitem(sys.modules, "lapsrn",
                        as_module("lapsrn", Net=LapSRNNet, _Conv_Block=ConvBlock))


def run(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x)


# ---------------------------------------------------------------- whole pickled models


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_twtygqyy_whole_pickled_vdsr_computes_the_repositorys_network(
        tmp_path, repo_modules, legacy):
    net = trained_like(sys.modules["vdsr"].Net())
    path = tmp_path / "model_epoch_50.pth"
    torch.save({"epoch": 50, "model": net}, path, _use_new_zipfile_serialization=not legacy)
    converted = convert_file(path, "vdsr", 3)
    converted.model.input_upsampled = True  # the repository's input is already bicubic
    x = torch.rand(1, 1, 12, 10)
    torch.testing.assert_close(run(converted.model, x), run(net, x), rtol=1e-4, atol=1e-5)


def test_twtygqyy_whole_pickled_lapsrn_computes_the_repositorys_network(tmp_path, repo_modules):
    net = trained_like(sys.modules["lapsrn"].Net())
    path = tmp_path / "lapsrn_model_epoch_100.pth"
    torch.save({"epoch": 100, "model": net}, path)
    converted = convert_file(path)  # model and scale read from the file
    assert (converted.name, converted.scale) == ("lapsrn", 4)
    assert converted.options["upconv_kernel"] == 4  # the papers' 4x4, not the authors' 3x3
    x = torch.rand(1, 1, 9, 7)
    torch.testing.assert_close(run(converted.model, x), run(net, x), rtol=1e-4, atol=1e-5)


def test_state_dicts_saved_from_twtygqyy_models_convert_too(tmp_path, repo_modules):
    net = trained_like(sys.modules["vdsr"].Net(), seed=1)
    torch.save(net.state_dict(), tmp_path / "vdsr_state.pth")
    converted = convert_file(tmp_path / "vdsr_state.pth", "vdsr", 2)
    converted.model.input_upsampled = True
    x = torch.rand(1, 1, 8, 8)
    torch.testing.assert_close(run(converted.model, x), run(net, x), rtol=1e-4, atol=1e-5)


def test_the_first_pytorch_vdsr_layout_converts(tmp_path):
    # vdsr.py's first version: one Sequential `features` of 20 convolutions and ReLUs
    layers = [nn.Conv2d(1, 64, 3, 1, 1, bias=False), nn.ReLU()]
    for _ in range(18):
        layers += [nn.Conv2d(64, 64, 3, 1, 1, bias=False), nn.ReLU()]
    features = trained_like(nn.Sequential(*layers, nn.Conv2d(64, 1, 3, 1, 1, bias=False)))
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()},
               tmp_path / "vdsr_features.pth")
    converted = convert_file(tmp_path / "vdsr_features.pth", "vdsr", 4)
    converted.model.input_upsampled = True
    x = torch.rand(1, 1, 8, 8)
    torch.testing.assert_close(run(converted.model, x), run(features, x) + x, rtol=1e-4,
                               atol=1e-5)


class Payload:
    """An object whose unpickling would run a command."""

    def __init__(self, function, *args) -> None:
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


@pytest.mark.parametrize("function", [os.system, eval], ids=["os.system", "builtins.eval"])
@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_a_pickle_naming_any_other_global_is_refused_without_running_it(
        tmp_path, repo_modules, function, legacy):
    marker = tmp_path / "ran"
    code = f"touch {marker}" if function is os.system else f"open({str(marker)!r}, 'w')"
    net = sys.modules["vdsr"].Net()
    path = tmp_path / "model_epoch_50.pth"
    torch.save({"epoch": 50, "model": net, "hook": Payload(function, code)}, path,
               _use_new_zipfile_serialization=not legacy)
    qualname = f"{function.__module__}.{function.__name__}"  # posix.system on Linux
    with pytest.raises(pickle.UnpicklingError, match=f"refusing to unpickle {re.escape(qualname)}"):
        read_pickled_model(path)
    with pytest.raises(ValueError, match="refusing to unpickle") as refused:
        read_checkpoint(path)
    assert "\n" not in str(refused.value)
    assert not marker.exists()


def test_a_class_of_another_repository_is_refused_naming_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "model", as_module("model", Generator=Generator))
    torch.save(Generator(2), tmp_path / "netG.pth")  # leftthomas released state dicts only
    with pytest.raises(ValueError, match=r"refusing to unpickle model\.Generator"):
        read_checkpoint(tmp_path / "netG.pth")


def test_the_allow_list_is_the_repositories_classes_torch_layers_and_tensor_rebuilding():
    assert {"vdsr.Net", "vdsr.Conv_ReLU_Block", "lapsrn.Net", "lapsrn._Conv_Block",
            "torch.nn.modules.conv.Conv2d", "torch._utils._rebuild_tensor_v2"} <= ALLOWED_GLOBALS
    assert not any(name.startswith(("os.", "posix.", "subprocess.", "builtins.e"))
                   or name in ("builtins.getattr", "builtins.exec", "torch.load")
                   for name in ALLOWED_GLOBALS)


# ---------------------------------------------------------------- yjn870's state dicts


def test_yjn870_srcnn_fsrcnn_and_espcn_compute_their_networks(tmp_path):
    srcnn = trained_like(YjnSRCNN(), seed=2)
    torch.save(srcnn.state_dict(), tmp_path / "srcnn_x3.pth")
    converted = convert_file(tmp_path / "srcnn_x3.pth")  # the scale from the file name
    assert (converted.name, converted.scale) == ("srcnn", 3)
    converted.model.input_upsampled = True
    x = torch.rand(1, 1, 14, 11)
    torch.testing.assert_close(run(converted.model, x), run(srcnn, x), rtol=1e-4, atol=1e-5)

    for scale in (2, 3):
        fsrcnn = trained_like(YjnFSRCNN(scale), seed=scale)
        torch.save(fsrcnn.state_dict(), tmp_path / f"fsrcnn_x{scale}.pth")
        converted = convert_file(tmp_path / f"fsrcnn_x{scale}.pth")
        assert (converted.name, converted.scale) == ("fsrcnn", scale)
        torch.testing.assert_close(run(converted.model, x), run(fsrcnn, x), rtol=1e-4,
                                   atol=1e-5)

    espcn = trained_like(YjnESPCN(4), seed=5)
    torch.save(espcn.state_dict(), tmp_path / "espcn.pth")
    converted = convert_file(tmp_path / "espcn.pth")  # x4 from the sub-pixel convolution
    assert (converted.name, converted.scale) == ("espcn", 4)
    torch.testing.assert_close(run(converted.model, x), run(espcn, x), rtol=1e-4, atol=1e-5)


def test_an_fsrcnn_state_dict_without_a_scale_in_its_name_asks_for_one(tmp_path):
    torch.save(YjnFSRCNN(3).state_dict(), tmp_path / "best.pth")
    with pytest.raises(ValueError, match="give the scale with -s"):
        convert_file(tmp_path / "best.pth")
    assert convert_file(tmp_path / "best.pth", scale=3).name == "fsrcnn"


# ---------------------------------------------------------------- leftthomas's generators


@pytest.mark.parametrize("prelu_block7", [False, True], ids=["batch-norm", "january-2018"])
@pytest.mark.parametrize("scale", [2, 4])
def test_leftthomas_srgan_generators_compute_their_networks(tmp_path, prelu_block7, scale):
    generator = trained_like(Generator(scale, prelu_block7), seed=scale)
    path = tmp_path / f"netG_epoch_{scale}_100.pth"
    torch.save(generator.state_dict(), path)
    converted = convert_file(path)
    assert converted.name == ("srgan" if scale == 4 else "srresnet")  # srgan is x4 only
    assert converted.options == {"blocks": 5, "channels": 64, "output": "tanh",
                                 "trunk_end": "prelu" if prelu_block7 else "bn"}
    x = torch.rand(1, 3, 7, 9)
    torch.testing.assert_close(run(converted.model, x), run(generator, x), rtol=1e-4,
                               atol=1e-5)


def test_converted_weights_record_their_build_options_and_load_by_name(
        tmp_path, converted_folder):
    import superres
    from superres.weights import save_weights

    generator = trained_like(Generator(4, prelu_block7=True), seed=7)
    torch.save(generator.state_dict(), tmp_path / "netG_epoch_4_100.pth")
    converted = convert_file(tmp_path / "netG_epoch_4_100.pth")
    out = save_weights(converted.model, tmp_path / "srgan.safetensors", build=converted.options)
    with safe_open(str(out), "pt") as handle:
        assert '"trunk_end": "prelu"' in handle.metadata()["build"]
    x = torch.rand(1, 3, 6, 6)
    for weights in (out, tmp_path / "netG_epoch_4_100.pth"):  # the latter converted on the fly
        upscaler = superres.load("srgan", 4, weights=weights)
        torch.testing.assert_close(run(upscaler.model, x), run(generator, x), rtol=1e-4,
                                   atol=1e-5)
    (cached,) = converted_folder.iterdir()  # converted once, kept under the file's sha256
    assert cached.name.endswith("-srgan-x4.safetensors")
    superres.load("srgan", 4, weights=tmp_path / "netG_epoch_4_100.pth")
    assert list(converted_folder.iterdir()) == [cached]


def test_a_checkpoint_in_no_known_layout_is_refused_on_one_line_naming_what_differs(tmp_path):
    torch.save({"encoder.0.weight": torch.zeros(8, 3, 3, 3)}, tmp_path / "other.pth")
    with pytest.raises(ValueError) as refused:
        convert_file(tmp_path / "other.pth")
    message = str(refused.value)
    assert "\n" not in message
    assert "encoder.0.weight" in message and "residual_layer.0.conv.weight" in message
