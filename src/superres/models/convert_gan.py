"""Loading released SRResNet/SRGAN, ESRGAN (RRDBNet) and Real-ESRGAN compact (SRVGG)
checkpoints onto superres's modules.

Five key layouts are known: the official xinntao/ESRGAN code's (`RRDB_trunk.N.RDB1.conv1`,
`trunk_conv`, `upconv1`, `HRconv`), the same repository's 2018 layout (`model.0`,
`model.1.sub.N.RDB1.conv1.0`, ...: the first release, and most community ESRGAN models),
BasicSR's (`body.N.rdb1.conv1`, `conv_body`, `conv_up1`, `conv_hr`; Real-ESRGAN's RRDBNet
models too; optionally wrapped in `params_ema` / `params`), Real-ESRGAN's SRVGGNetCompact
(`body.N`) and, for SRResNet and SRGAN, whose authors released no PyTorch weights,
Lornatang/SRGAN-PyTorch's (`conv1`, `trunk.N.rcb.K`, `conv2`, `upsampling.N.upsample_block.K`,
`conv3`; its older `conv_block1/2/3` names too; inside its training checkpoint's `state_dict`).

As `superres.models.convert` does for EDSR, RDN and RCAN (whose helpers this module uses), a
checkpoint's keys are renamed to ours, the architecture (blocks, features, growth, scale) is
read from the tensor shapes, and a checkpoint that is not the requested model is refused
naming the keys and shapes that differ. Files are read without running code from them.

The scale is read from the upsampler: sub-pixel convolutions (SRResNet, SRVGG) give it
exactly; RRDBNet's stages are nearest x2 each, so a 2018-layout x3 model (one nearest x3
stage, same tensors) reads as x2 and is not supported.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from superres.models.convert import (
    Architecture,
    Layout,
    ReleasedWeights,
    Rule,
    Tensors,
    _differences,
    _indices,
    _rename,
    _shape,
    _tensors,
    mismatch_error,
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
    blocks = len(_indices(keys, r"RRDB_trunk\.(\d+)\.RDB1\.conv1\.weight"))
    stages = len(_indices(keys, r"upconv(\d+)\.weight"))
    return [
        (r"conv_first\.(.+)", r"body.0.\1"),
        (r"RRDB_trunk\.(\d+)\.RDB([123])\.conv([1-5])\.(.+)", _rdb(_TRUNK)),
        (r"trunk_conv\.(.+)", rf"{_TRUNK}{blocks}.\1"),
        *_upsampler_rules(r"upconv(\d+)\.(.+)", r"HRconv\.(.+)", r"conv_last\.(.+)", stages),
    ]


def _basicsr_rules(keys: list[str]) -> list[Rule]:
    blocks = len(_indices(keys, r"body\.(\d+)\.rdb1\.conv1\.weight"))
    stages = len(_indices(keys, r"conv_up(\d+)\.weight"))
    return [
        (r"conv_first\.(.+)", r"body.0.\1"),
        (r"body\.(\d+)\.rdb([123])\.conv([1-5])\.(.+)", _rdb(_TRUNK)),
        (r"conv_body\.(.+)", rf"{_TRUNK}{blocks}.\1"),
        *_upsampler_rules(r"conv_up(\d+)\.(.+)", r"conv_hr\.(.+)", r"conv_last\.(.+)", stages),
    ]


def _esrgan_2018_rules(keys: list[str]) -> list[Rule]:
    # One flat Sequential: model.0 head, model.1 the trunk, then per x2 stage (upsample,
    # conv, LeakyReLU), then HR conv, LeakyReLU, output conv: the indices with weights.
    blocks = len(_indices(keys, r"model\.1\.sub\.(\d+)\.RDB1\.conv1\.0\.weight"))
    convs = _indices(keys, r"model\.(\d+)\.weight")[1:]
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
    last = max(_indices(keys, r"body\.(\d+)\.weight"), default=-1)  # the sub-pixel conv
    return [
        (rf"body\.{last}\.(.+)", r"body.upsampler.0.\1"),
        (r"body\.(\d+)\.(.+)", r"body.body.\1.\2"),
    ]


def _srgan_pytorch_rules(keys: list[str]) -> list[Rule]:
    blocks = len(_indices(keys, r"trunk\.(\d+)\.rcb\.0\.weight"))
    stages = len(_indices(keys, r"upsampling\.(\d+)\.upsample_block\.0\.weight"))
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


def _checkpoint_tensors(state: Mapping[str, Any]) -> Tensors:
    """The tensors of a loaded checkpoint: SRGAN-PyTorch's training checkpoint and BasicSR's
    wrappers opened, DataParallel's `module.` prefix dropped."""
    if isinstance(state.get("state_dict"), Mapping):
        state = state["state_dict"]
    return {key.removeprefix("module."): value for key, value in _tensors(state).items()}


def _layout(tensors: Tensors) -> Layout:
    for layout in LAYOUTS:
        if layout.marker in tensors:
            return layout
    known = "; ".join(f"{layout.name}: {layout.marker}" for layout in LAYOUTS)
    raise ValueError(
        f"not an SRResNet, ESRGAN or SRVGG checkpoint in a known layout: it has keys like "
        f"{', '.join(list(tensors)[:4])}; each known layout has one key ({known})"
    )


def _factor(state: Mapping[str, Tensor], key: str, channels: int, name: str) -> int:
    """The upscaling factor f of a sub-pixel conv to channels x f^2 outputs."""
    outputs = state[key].shape[0]
    factor = math.isqrt(outputs // channels)
    if factor < 2 or factor * factor * channels != outputs:
        raise ValueError(f"{name} {_shape(state[key])} is no sub-pixel convolution to "
                         f"{channels} channels times a square")
    return factor


def _rrdb(state: Mapping[str, Tensor], name: Callable[[str], str]) -> Architecture:
    head = state["body.0.weight"]
    if head.shape[1] != 3:  # BasicSR folds x2 and x1 inputs into channels first
        raise ValueError(
            f"{name('body.0.weight')} {_shape(head)} takes {head.shape[1]} input channels: "
            "BasicSR's pixel-unshuffle RRDBNet (as RealESRGAN_x2plus), which superres does "
            "not build"
        )
    sizes = (
        ("blocks", len(_indices(state, r"body\.1\.body\.(\d+)\.body\.0\.body\.fusion\.weight"))),
        ("channels", head.shape[0]),
        ("growth", state[f"{_TRUNK}0.body.0.body.dense.0.conv.weight"].shape[0]),
    )
    return Architecture("rrdb", 2 ** len(_indices(state, r"upsampler\.(\d+)\.1\.weight")), sizes)


def _srvgg(state: Mapping[str, Tensor], name: Callable[[str], str]) -> Architecture:
    convs = [k for k in state if re.fullmatch(r"body\.body\.\d+\.weight", k) and state[k].ndim == 4]
    last = "body.upsampler.0.weight"
    sizes = (("convs", len(convs) - 1), ("channels", state["body.body.0.weight"].shape[0]))
    return Architecture("srvgg", _factor(state, last, 3, name(last)), sizes)


def _srresnet(state: Mapping[str, Tensor], name: Callable[[str], str]) -> Architecture:
    channels = state["body.0.0.weight"].shape[0]
    stages = [f"upsampler.{k}.0.0.weight"
              for k in _indices(state, r"upsampler\.(\d+)\.0\.0\.weight")]
    sizes = (("blocks", len(_indices(state, r"body\.1\.body\.(\d+)\.body\.0\.0\.weight"))),
             ("channels", channels))
    scale = math.prod(_factor(state, key, channels, name(key)) for key in stages)
    return Architecture("srresnet", scale, sizes)


def describe(state: Mapping[str, Tensor], origin: Mapping[str, str] | None = None) -> Architecture:
    """The family (srresnet, rrdb or srvgg), scale and sizes of a state dict in superres's
    key layout (`origin` gives the checkpoint's own names for error messages)."""
    def name(key: str) -> str:
        return (origin or {}).get(key, key)

    try:
        if any(".dense." in key for key in state):
            return _rrdb(state, name)
        if "body.upsampler.0.weight" in state:
            return _srvgg(state, name)
        return _srresnet(state, name)
    except KeyError as err:
        raise ValueError(f"cannot read the architecture: no {name(err.args[0])}") from err


def _share_slopes(ours: Tensors, target: nn.Module) -> None:
    """A PReLU with one shared slope (`nn.PReLU()`'s default, which SRGAN-PyTorch uses) as
    the same slope in every channel: the same function, in our per-channel PReLU."""
    for name, module in target.named_modules():
        key = f"{name}.weight"
        if isinstance(module, nn.PReLU) and key in ours and ours[key].numel() == 1:
            ours[key] = ours[key].expand(module.num_parameters).clone()


def _scale_keys(ours: Tensors, origin: Mapping[str, str]) -> str:
    """The checkpoint's upsampler convolutions and their shapes: what fixes the scale."""
    pattern = r"upsampler\.\d+\.(0\.0|1)\.weight|body\.upsampler\.0\.weight"
    return ", ".join(f"{origin[k]} {_shape(v)}" for k, v in ours.items()
                     if re.fullmatch(pattern, k) and v.ndim == 4)


def convert_for(state: Mapping[str, Any], target: nn.Module, what: str = "the model") -> Tensors:
    """`state`, a released SRResNet/ESRGAN/SRVGG checkpoint in any known layout, as a state
    dict for `target` (a network built by `srresnet`, `rrdbnet` or `srvgg`, any sizes), or a
    ValueError saying what the checkpoint is and which keys and shapes do not fit."""
    tensors = _checkpoint_tensors(state)
    layout = _layout(tensors)
    ours, origin, unmapped = _rename(tensors, layout)
    _share_slopes(ours, target)
    expected = target.state_dict()
    found, wanted = describe(ours, origin), describe(expected)
    differences = _differences(ours, expected, origin, unmapped)
    if found != wanted or differences:
        raise mismatch_error(layout.name, found, wanted, what, _scale_keys(ours, origin),
                             differences)
    return {key: ours[key] for key in expected}


def _spec(model_name: str) -> ModelSpec:
    if model_name not in SPECS:
        raise ValueError(f"no converter for {model_name!r}; known: {', '.join(SPECS)}")
    return SPECS[model_name]


def convert_state_dict(state: Mapping[str, Any], model_name: str, scale: int) -> Tensors:
    """A released checkpoint as the state dict of superres's `model_name` at `scale`; a
    checkpoint of another architecture, size or scale is refused with a ValueError."""
    spec = _spec(model_name)
    spec.check_scale(scale)
    with torch.device("meta"):  # shapes only: nothing is allocated or initialised
        target = spec.build(scale)
    return convert_for(state, target, f"{model_name} x{scale}")


def model_for(state: Mapping[str, Any]) -> tuple[nn.Module, Architecture]:
    """The network a checkpoint holds, built with the sizes read from its tensors and loaded
    (eval mode), with its description: for releases whose sizes no registered model has
    (realesr-general-x4v3's 32 convolutions, RealESRGAN_x4plus_anime_6B's 6 blocks)."""
    tensors = _checkpoint_tensors(state)
    ours, origin, _ = _rename(tensors, _layout(tensors))
    found = describe(ours, origin)
    model = BUILDERS[found.family](found.scale, **dict(found.sizes))
    model.load_state_dict(convert_for(tensors, model, f"the network it describes, {found}"))
    return model.eval(), found
