"""Released SRResNet/SRGAN, ESRGAN (RRDBNet) and Real-ESRGAN compact (SRVGG) checkpoints:
their key layouts and releases.

Five key layouts are known: the official xinntao/ESRGAN code's (`RRDB_trunk.N.RDB1.conv1`,
`trunk_conv`, `upconv1`, `HRconv`), the same repository's 2018 layout (`model.0`,
`model.1.sub.N.RDB1.conv1.0`, ...: the first release, and most community ESRGAN models),
BasicSR's (`body.N.rdb1.conv1`, `conv_body`, `conv_up1`, `conv_hr`; Real-ESRGAN's RRDBNet
models too; optionally wrapped in `params_ema` / `params`), Real-ESRGAN's SRVGGNetCompact
(`body.N`) and, for SRResNet and SRGAN, whose authors released no PyTorch weights,
Lornatang/SRGAN-PyTorch's (`conv1`, `trunk.N.rcb.K`, `conv2`, `upsampling.N.upsample_block.K`,
`conv3`; its older `conv_block1/2/3` names too; inside its training checkpoint's `state_dict`).

The scale is read from the upsampler: sub-pixel convolutions (SRResNet, SRVGG) give it
exactly; RRDBNet's stages are nearest x2 each, so a 2018-layout x3 model (one nearest x3
stage, same tensors) reads as x2 and is not supported.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from torch import Tensor, nn

from superres.models.convert.mechanism import (
    Architecture,
    Family,
    Layout,
    ReleasedWeights,
    Rule,
    Tensors,
    indices,
    rename,
    shape,
    state_tensors,
    sub_pixel_factor,
)
from superres.models.esrgan import ESRGAN, RRDB, SRVGG, rrdbnet, srvgg
from superres.models.registry import ModelSpec
from superres.models.srresnet import SRGAN, SRRESNET, srresnet

SPECS: dict[str, ModelSpec] = {spec.name: spec for spec in (SRRESNET, SRGAN, RRDB, ESRGAN, SRVGG)}
BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "srresnet": srresnet, "rrdb": rrdbnet, "srvgg": srvgg,
}

_ESRGAN_DRIVE = "https://drive.google.com/drive/folders/17VYV_SoZZesU6mbxz2dMAIccSSlqLecY"
_REAL_ESRGAN = "https://github.com/xinntao/Real-ESRGAN/releases/download/"
_SRGAN_PYTORCH = "https://huggingface.co/goodfellowliu/SRGAN-PyTorch/resolve/main/"
_NO_DIGEST = "; no digest published"

# Digests: the hex after the last '-' in BasicSR's file names is the start of the file's
# sha256 (see ReleasedWeights); no full digest of any of these files is published.
RELEASED: tuple[ReleasedWeights, ...] = (
    *(ReleasedWeights(model, 4, f"RRDB_{stem}_x4.pth", _ESRGAN_DRIVE, "ESRGAN",
                      note="a file in the authors' Google Drive folder (xinntao/ESRGAN README), "
                      "in RRDBNet_arch.py's layout since 2019 (earlier copies: the 2018 layout)"
                      + _NO_DIGEST)
      for model, stem in (("esrgan", "ESRGAN"), ("rrdb", "PSNR"))),
    ReleasedWeights("esrgan", 4, "ESRGAN_SRx4_DF2KOST_official-ff704c30.pth",
                    f"{_REAL_ESRGAN}v0.1.1/ESRGAN_SRx4_DF2KOST_official-ff704c30.pth", "BasicSR",
                    "ff704c30", note="BasicSR's conversion of RRDB_ESRGAN_x4.pth; also Google "
                    "Drive id 1b3_bWZTjNO3iL2js1yWkJfjZykcQgvzT (BasicSR's "
                    "scripts/download_pretrained_models.py)"),
    ReleasedWeights("rrdb", 4, "ESRGAN_PSNR_SRx4_DF2K_official-150ff491.pth",
                    "https://drive.google.com/uc?id=1swaV5iBMFfg-DL6ZyiARztbhutDCWXMM", "BasicSR",
                    "150ff491", note="BasicSR's conversion of RRDB_PSNR_x4.pth; Google Drive id "
                    "from BasicSR's scripts/download_pretrained_models.py"),
    ReleasedWeights("esrgan", 4, "RealESRGAN_x4plus.pth",
                    f"{_REAL_ESRGAN}v0.1.0/RealESRGAN_x4plus.pth", "BasicSR",
                    note="Real-ESRGAN: ESRGAN's network trained on synthetic real-world "
                    "degradations, not the paper's bicubic ones" + _NO_DIGEST),
    ReleasedWeights("srvgg", 4, "realesr-animevideov3.pth",
                    f"{_REAL_ESRGAN}v0.2.5.0/realesr-animevideov3.pth", "Real-ESRGAN SRVGG",
                    note="Real-ESRGAN's anime video model: 16 convolutions, the registered "
                    "srvgg" + _NO_DIGEST),
    ReleasedWeights("srvgg", 4, "realesr-general-x4v3.pth",
                    f"{_REAL_ESRGAN}v0.2.5.0/realesr-general-x4v3.pth", "Real-ESRGAN SRVGG",
                    note="32 convolutions, twice the registered srvgg: load it with model_for, "
                    "which reads the sizes from the file" + _NO_DIGEST),
    *(ReleasedWeights(model, scale, f"{stem}_x{scale}-SRGAN_ImageNet.pth.tar",
                      f"{_SRGAN_PYTORCH}{stem}_x{scale}-SRGAN_ImageNet.pth.tar", "SRGAN-PyTorch",
                      note="Lornatang/SRGAN-PyTorch's own training (the authors released no "
                      "PyTorch weights); the repository renamed its files between versions"
                      + _NO_DIGEST)
      for model, scale, stem in (("srresnet", 2, "SRResNet"), ("srresnet", 4, "SRResNet"),
                                 ("srgan", 4, "SRGAN"))),
)


def _rdb(prefix: str) -> Callable[[re.Match[str]], str]:
    """Official (block, RDB 1-3, conv 1-5, rest) -> our key under `prefix`: convs 1-4 are
    the dense layers, conv 5 the fusion."""
    def rename(m: re.Match[str]) -> str:
        rdb = f"{prefix}{m[1]}.body.{int(m[2]) - 1}.body"
        conv = int(m[3])
        return f"{rdb}.dense.{conv - 1}.conv.{m[4]}" if conv < 5 else f"{rdb}.fusion.{m[4]}"
    return rename


_TRUNK = "body.1.body."  # RRDBNet's and SRResNet's: body.0 the head, body.1 the long skip


def _upsampler_rules(ups: str, hr: str, last: str, stages: int) -> list[Rule]:
    """The nearest + conv stages (numbered from 1 in `ups`), HR conv and output conv."""
    return [
        (ups, lambda m: f"upsampler.{int(m[1]) - 1}.1.{m[2]}"),
        (hr, rf"upsampler.{stages}.\1"),
        (last, rf"upsampler.{stages + 2}.\1"),
    ]


def _esrgan_rules(keys: list[str]) -> list[Rule]:
    blocks = len(indices(keys, r"RRDB_trunk\.(\d+)\.RDB1\.conv1\.weight"))
    stages = len(indices(keys, r"upconv(\d+)\.weight"))
    return [
        (r"conv_first\.(.+)", r"body.0.\1"),
        (r"RRDB_trunk\.(\d+)\.RDB([123])\.conv([1-5])\.(.+)", _rdb(_TRUNK)),
        (r"trunk_conv\.(.+)", rf"{_TRUNK}{blocks}.\1"),
        *_upsampler_rules(r"upconv(\d+)\.(.+)", r"HRconv\.(.+)", r"conv_last\.(.+)", stages),
    ]


def _basicsr_rules(keys: list[str]) -> list[Rule]:
    blocks = len(indices(keys, r"body\.(\d+)\.rdb1\.conv1\.weight"))
    stages = len(indices(keys, r"conv_up(\d+)\.weight"))
    return [
        (r"conv_first\.(.+)", r"body.0.\1"),
        (r"body\.(\d+)\.rdb([123])\.conv([1-5])\.(.+)", _rdb(_TRUNK)),
        (r"conv_body\.(.+)", rf"{_TRUNK}{blocks}.\1"),
        *_upsampler_rules(r"conv_up(\d+)\.(.+)", r"conv_hr\.(.+)", r"conv_last\.(.+)", stages),
    ]


def _esrgan_2018_rules(keys: list[str]) -> list[Rule]:
    # One flat Sequential: model.0 head, model.1 the trunk, then per x2 stage (upsample,
    # conv, LeakyReLU), then HR conv, LeakyReLU, output conv: the indices with weights.
    blocks = len(indices(keys, r"model\.1\.sub\.(\d+)\.RDB1\.conv1\.0\.weight"))
    convs = indices(keys, r"model\.(\d+)\.weight")[1:]
    stages = len(convs) - 2
    names = [*(f"upsampler.{k}.1" for k in range(stages)), f"upsampler.{stages}",
             f"upsampler.{stages + 2}"]
    ours = dict(zip(convs, names, strict=False))  # short of convs: the differences say so
    return [
        (r"model\.0\.(.+)", r"body.0.\1"),
        (r"model\.1\.sub\.(\d+)\.RDB([123])\.conv([1-5])\.0\.(.+)", _rdb(_TRUNK)),
        (rf"model\.1\.sub\.{blocks}\.(.+)", rf"{_TRUNK}{blocks}.\1"),
        (r"model\.(\d+)\.(.+)", lambda m: f"{ours.get(int(m[1]), f'model.{m[1]}')}.{m[2]}"),
    ]


def _srvgg_rules(keys: list[str]) -> list[Rule]:
    last = max(indices(keys, r"body\.(\d+)\.weight"), default=-1)  # the sub-pixel conv
    return [
        (rf"body\.{last}\.(.+)", r"body.upsampler.0.\1"),
        (r"body\.(\d+)\.(.+)", r"body.body.\1.\2"),
    ]


def _srgan_pytorch_rules(keys: list[str]) -> list[Rule]:
    blocks = len(indices(keys, r"trunk\.(\d+)\.rcb\.0\.weight"))
    stages = len(indices(keys, r"upsampling\.(\d+)\.upsample_block\.0\.weight"))
    block = {"0": "0.0", "1": "0.1", "2": "1", "3": "2.0", "4": "2.1"}  # conv BN PReLU conv BN
    return [
        (r"conv(?:_block)?1\.([01])\.(.+)", r"body.0.\1.\2"),
        (r"trunk\.(\d+)\.rcb\.([0-4])\.(.+)",
         lambda m: f"{_TRUNK}{m[1]}.body.{block[m[2]]}.{m[3]}"),
        (r"conv(?:_block)?2\.([01])\.(.+)", rf"{_TRUNK}{blocks}.\1.\2"),
        (r"upsampling\.(\d+)\.upsample_block\.0\.(.+)", r"upsampler.\1.0.0.\2"),
        (r"upsampling\.(\d+)\.upsample_block\.2\.(.+)", r"upsampler.\1.1.\2"),
        (r"conv(?:_block)?3\.(.+)", rf"upsampler.{stages}.\1"),
    ]


LAYOUTS = (  # all these networks work on [0, 1] images
    Layout("ESRGAN", "trunk_conv.weight", _esrgan_rules, rgb_range=1.0),
    Layout("ESRGAN 2018", "model.1.sub.0.RDB1.conv1.0.weight", _esrgan_2018_rules, 1.0),
    Layout("BasicSR", "conv_body.weight", _basicsr_rules, rgb_range=1.0),
    Layout("Real-ESRGAN SRVGG", "body.0.weight", _srvgg_rules, rgb_range=1.0),
    Layout("SRGAN-PyTorch", "trunk.0.rcb.0.weight", _srgan_pytorch_rules, rgb_range=1.0),
)


def _rrdb(state: Mapping[str, Tensor], name: Callable[[str], str]) -> Architecture:
    head = state["body.0.weight"]
    if head.shape[1] != 3:  # BasicSR folds x2 and x1 inputs into channels first
        raise ValueError(
            f"{name('body.0.weight')} {shape(head)} takes {head.shape[1]} input channels: "
            "BasicSR's pixel-unshuffle RRDBNet (as RealESRGAN_x2plus), which superres does "
            "not build"
        )
    sizes = (
        ("blocks", len(indices(state, r"body\.1\.body\.(\d+)\.body\.0\.body\.fusion\.weight"))),
        ("channels", head.shape[0]),
        ("growth", state[f"{_TRUNK}0.body.0.body.dense.0.conv.weight"].shape[0]),
    )
    return Architecture("rrdb", 2 ** len(indices(state, r"upsampler\.(\d+)\.1\.weight")), sizes)


def _srvgg(state: Mapping[str, Tensor], name: Callable[[str], str]) -> Architecture:
    convs = [k for k in state if re.fullmatch(r"body\.body\.\d+\.weight", k) and state[k].ndim == 4]
    last = "body.upsampler.0.weight"
    sizes = (("convs", len(convs) - 1), ("channels", state["body.body.0.weight"].shape[0]))
    return Architecture("srvgg", sub_pixel_factor(state, last, 3, name(last)), sizes)


def _srresnet(state: Mapping[str, Tensor], name: Callable[[str], str]) -> Architecture:
    channels = state["body.0.0.weight"].shape[0]
    stages = [f"upsampler.{k}.0.0.weight"
              for k in indices(state, r"upsampler\.(\d+)\.0\.0\.weight")]
    sizes = (("blocks", len(indices(state, r"body\.1\.body\.(\d+)\.body\.0\.0\.weight"))),
             ("channels", channels))
    scale = math.prod(sub_pixel_factor(state, key, channels, name(key)) for key in stages)
    return Architecture("srresnet", scale, sizes)



def _read(state: Mapping[str, Tensor], name: Callable[[str], str]) -> Architecture:
    """RRDBNet (dense layers), SRVGG (its upsampler's one conv) or SRResNet."""
    if any(".dense." in key for key in state):
        return _rrdb(state, name)
    if "body.upsampler.0.weight" in state:
        return _srvgg(state, name)
    return _srresnet(state, name)


def _checkpoint_tensors(state: Mapping[str, Any]) -> Tensors:
    """The tensors of a loaded checkpoint: SRGAN-PyTorch's training checkpoint and BasicSR's
    wrappers opened, DataParallel's `module.` prefix dropped."""
    if isinstance(state.get("state_dict"), Mapping):
        state = state["state_dict"]
    return {key.removeprefix("module."): value for key, value in state_tensors(state).items()}


GAN_FAMILY = Family(
    "SRResNet, ESRGAN or SRVGG", SPECS, LAYOUTS, RELEASED, _read,
    upsampler=r"upsampler\.\d+\.(0\.0|1)\.weight|body\.upsampler\.0\.weight",
    tensors=_checkpoint_tensors,
)
describe = GAN_FAMILY.describe
convert_for = GAN_FAMILY.convert_for
convert_state_dict = GAN_FAMILY.convert_state_dict


def model_for(state: Mapping[str, Any]) -> tuple[nn.Module, Architecture]:
    """The network a checkpoint holds, built with the sizes read from its tensors and loaded
    (eval mode), with its description: for releases whose sizes no registered model has
    (realesr-general-x4v3's 32 convolutions, RealESRGAN_x4plus_anime_6B's 6 blocks)."""
    tensors = _checkpoint_tensors(state)
    ours, origin, _ = rename(tensors, GAN_FAMILY.layout(tensors))
    found = describe(ours, origin)
    model = BUILDERS[found.family](found.scale, **dict(found.sizes))
    model.load_state_dict(convert_for(tensors, model, f"the network it describes, {found}"))
    return model.eval(), found
