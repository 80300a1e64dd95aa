"""Popular PyTorch re-implementations' checkpoints: their key layouts, what their networks
compute beyond superres's models, and their releases.

The layouts are read from the repositories' model code:
- twtygqyy/pytorch-vdsr `vdsr.py`: `input`, `residual_layer.N.conv` (18), `output`, all without
  bias; its first version one Sequential `features.N`. Whole pickled models in
  {"epoch", "model"} (read with `superres.weights.read_pickled_model`'s allow-list).
- twtygqyy/pytorch-LapSRN `lapsrn.py`: `conv_input`, per x2 level `convt_F{n}.0.cov_block.K` (10
  convolutions and a 4x4 transposed convolution, the papers' text: `upconv_kernel=4`),
  `convt_R{n}` (the band), `convt_I{n}` (the image's 4x4 transposed convolution); no biases.
- yjn870/SRCNN-pytorch (`conv1..3`), FSRCNN-pytorch (`first_part`, `mid_part`, `last_part`, the
  deconvolution centred as superres's) and ESPCN-pytorch (`first_part`, `last_part.0`): state
  dicts, on Y in [0, 1] as superres.
- leftthomas/SRGAN `model.py`: `block1` (conv, PReLU), `block2..6` (conv1, bn1, prelu, conv2,
  bn2: five blocks), `block7` (conv-BN, or conv-PReLU in January 2018: `trunk_end`),
  `block8` (upsample blocks conv + pixel shuffle + PReLU, then a conv) and an output
  (tanh + 1) / 2 (`output="tanh"`). Its convolutions before batch norm have biases, which
  superres's do not: a bias b before BN is BN's running mean lowered by b, exactly.
Missing biases are zeros; PReLUs with one shared slope are expanded by the pipeline.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor

from superres.models.convert.gan import GAN_FAMILY
from superres.models.convert.mechanism import (
    Architecture,
    Family,
    Layout,
    ReleasedWeights,
    Rule,
    Tensors,
    early_cnn_architecture,
    indices,
    state_tensors,
    sub_pixel_factor,
)
from superres.models.espcn import ESPCN
from superres.models.fsrcnn import FSRCNN, FSRCNN_S
from superres.models.lapsrn import LAPSRN
from superres.models.registry import ModelSpec
from superres.models.srcnn import SRCNN, SRCNN_915
from superres.models.srresnet import SRGAN, SRRESNET
from superres.models.vdsr import VDSR

# SRGAN before SRResNet: leftthomas's generator is GAN-trained (superres's srgan is x4 only)
SPECS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (SRCNN, SRCNN_915, FSRCNN, FSRCNN_S, ESPCN, VDSR, LAPSRN, SRGAN, SRRESNET)
}


# ---------------------------------------------------------------- architectures


def read_small(state: Mapping[str, Tensor], name: Callable[[str], str]) -> Architecture:
    """SRCNN, FSRCNN, ESPCN, VDSR, LapSRN (its levels give the scale) or TF-LapSRN, from a
    state dict in superres's names; sizes are named as the builders' arguments."""
    if "levels.0.features.0.weight" in state:
        levels = len(indices(state, r"levels\.(\d+)\.features\.0\.weight"))
        convs = len(indices(state, r"levels\.0\.features\.(\d+)\.weight"))
        if "embed.0.weight" not in state:  # each level starts from one channel
            sizes = (("depth", convs), ("channels", state["levels.0.features.0.weight"].shape[0]),
                     ("design", "tf-lapsrn"))
            return Architecture("lapsrn", 2**levels, sizes)
        upconv = state[f"levels.0.features.{2 * (convs - 1)}.weight"]
        sizes = (("depth", convs - 1), ("channels", state["embed.0.weight"].shape[0]),
                 *((("upconv_kernel", upconv.shape[-1]),) if upconv.shape[-1] != 3 else ()))
        return Architecture("lapsrn", 2**levels, sizes)
    if "upsampler.0.weight" in state:
        scale = sub_pixel_factor(state, "upsampler.0.weight", 1, name("upsampler.0.weight"))
        sizes = (("n1", state["body.0.weight"].shape[0]), ("n2", state["body.2.weight"].shape[0]))
        return Architecture("espcn", scale, sizes)
    return early_cnn_architecture(state)


def _read(state: Mapping[str, Tensor], name: Callable[[str], str]) -> Architecture:
    """SRResNet (its head is `body.0.0`) or one of the small Y-channel networks."""
    return GAN_FAMILY.read(state, name) if "body.0.0.weight" in state else read_small(state, name)


# ---------------------------------------------------------------- tensors and layouts


def _zero_biases(tensors: Tensors, transposed: str) -> None:
    """A zero bias for every weight without one (repositories that build their convolutions
    with bias=False); `transposed` matches the transposed convolutions' weights, whose
    outputs are their second dimension. LapSRN's image upsampler has no bias in superres."""
    for key, value in list(tensors.items()):
        bias = key.removesuffix("weight") + "bias"
        if key.endswith(".weight") and value.ndim == 4 and bias not in tensors:
            if re.fullmatch(r"convt_I\d+\.weight", key):
                continue
            outputs = value.shape[1] if re.fullmatch(transposed, key) else value.shape[0]
            tensors[bias] = torch.zeros(outputs)


def _fold_conv_bias(tensors: Tensors) -> None:
    """leftthomas's convolutions before batch norm have biases: BN(Wx + b) is BN(Wx) with
    the running mean lowered by b, in eval mode exactly. Old checkpoints lack BN's counter."""
    for key in [k for k in tensors if k.endswith(".running_mean")]:
        norm = key.removesuffix(".running_mean")
        conv = re.sub(r"bn(\d)$", r"conv\1", norm) if norm.endswith(("bn1", "bn2")) else (
            re.sub(r"\.1$", ".0", norm))
        if f"{conv}.bias" in tensors:
            tensors[key] = tensors[key] - tensors.pop(f"{conv}.bias")
        tensors.setdefault(f"{norm}.num_batches_tracked", torch.tensor(0))


def _tensors(state: Mapping[str, Any]) -> Tensors:
    """The tensors of a re-implementation's checkpoint (twtygqyy's {"epoch", "model"} opened),
    completed where superres's modules hold more: zero biases, BN-folded conv biases."""
    if isinstance(state.get("model"), Mapping):
        state = state["model"]
    tensors = state_tensors(state)
    if "convt_F1.0.cov_block.0.weight" in tensors or "input.weight" in tensors or (
            "features.0.weight" in tensors and "features.1.weight" not in tensors):
        _zero_biases(tensors, r"convt_F\d+\.0\.cov_block\.(\d+)\.weight")
    if "block7.0.weight" in tensors:
        _fold_conv_bias(tensors)
    return tensors


def _vdsr_rules(keys: list[str]) -> list[Rule]:
    last = 2 * (len(indices(keys, r"residual_layer\.(\d+)\.conv\.weight")) + 1)
    return [
        (r"input\.(.+)", r"body.body.0.\1"),
        (r"residual_layer\.(\d+)\.conv\.(.+)", lambda m: f"body.body.{2 * int(m[1]) + 2}.{m[2]}"),
        (r"output\.(.+)", rf"body.body.{last}.\1"),
    ]


def _vdsr_features_rules(keys: list[str]) -> list[Rule]:
    return [(r"features\.(\d+)\.(.+)", r"body.body.\1.\2")]


def _lapsrn_rules(keys: list[str]) -> list[Rule]:
    def level(m: re.Match[str]) -> str:
        return f"levels.{int(m[1]) - 1}"

    return [
        (r"conv_input\.(.+)", r"embed.0.\1"),
        (r"convt_F(\d+)\.0\.cov_block\.(\d+)\.(.+)",
         lambda m: f"{level(m)}.features.{m[2]}.{m[3]}"),
        (r"convt_R(\d+)\.(.+)", lambda m: f"{level(m)}.residual.{m[2]}"),
        (r"convt_I(\d+)\.(.+)", lambda m: f"{level(m)}.image.{m[2]}"),
    ]


def _srcnn_rules(keys: list[str]) -> list[Rule]:
    return [(r"conv([123])\.(.+)", lambda m: f"body.{2 * int(m[1]) - 2}.{m[2]}")]


def _fsrcnn_rules(keys: list[str]) -> list[Rule]:
    return [
        (r"first_part\.([01])\.(.+)", r"body.\1.\2"),
        (r"mid_part\.(\d+)\.(.+)", lambda m: f"body.{int(m[1]) + 2}.{m[2]}"),
        (r"last_part\.(.+)", r"upsampler.\1"),
    ]


def _espcn_rules(keys: list[str]) -> list[Rule]:
    return [
        (r"first_part\.([02])\.(.+)", r"body.\1.\2"),
        (r"last_part\.0\.(.+)", r"upsampler.0.\1"),
    ]


_TRUNK = "body.1.body."
_BLOCK = {"conv1": "body.0.0", "bn1": "body.0.1", "prelu": "body.1", "conv2": "body.2.0",
          "bn2": "body.2.1"}


def _srgan_rules(keys: list[str]) -> list[Rule]:
    blocks = indices(keys, r"block(\d+)\.conv1\.weight")  # block2 .. block6
    stages = len(indices(keys, r"block8\.(\d+)\.conv\.weight"))
    first = min(blocks, default=2)
    return [
        (r"block1\.([01])\.(.+)", r"body.0.\1.\2"),
        (r"block(\d+)\.(conv1|bn1|prelu|conv2|bn2)\.(.+)",
         lambda m: f"{_TRUNK}{int(m[1]) - first}.{_BLOCK[m[2]]}.{m[3]}"),
        (r"block7\.([01])\.(.+)", rf"{_TRUNK}{len(blocks)}.\1.\2"),
        (r"block8\.(\d+)\.conv\.(.+)", r"upsampler.\1.0.0.\2"),
        (r"block8\.(\d+)\.prelu\.(.+)", r"upsampler.\1.1.\2"),
        (rf"block8\.{stages}\.(.+)", rf"upsampler.{stages}.\1"),
    ]


LAYOUTS = (
    Layout("pytorch-vdsr", "residual_layer.0.conv.weight", _vdsr_rules, rgb_range=1.0),
    Layout("pytorch-LapSRN", "convt_F1.0.cov_block.0.weight", _lapsrn_rules, rgb_range=1.0),
    Layout("SRCNN-pytorch", "conv3.weight", _srcnn_rules, rgb_range=1.0),
    Layout("FSRCNN-pytorch", "mid_part.0.weight", _fsrcnn_rules, rgb_range=1.0),
    Layout("ESPCN-pytorch", "last_part.0.weight", _espcn_rules, rgb_range=1.0),
    Layout("leftthomas SRGAN", "block7.0.weight", _srgan_rules, rgb_range=1.0),
    Layout("pytorch-vdsr (first version)", "features.0.weight", _vdsr_features_rules,
           rgb_range=1.0),
)


def _options(state: Mapping[str, Any], found: Architecture, scale: int) -> dict[str, Any]:
    """The builder's options a re-implementation's network needs: its sizes, and what it
    computes beyond superres's model (LapSRN's 4x4 upsampler, leftthomas's SRGAN ends)."""
    sizes = dict(found.sizes)
    if "kernels" in sizes:
        sizes["kernels"] = list(sizes["kernels"])  # saved as JSON with the weights
    tensors = _tensors(state)
    if found.family == "lapsrn":
        return {**sizes, "upconv_kernel": tensors["convt_F1.0.cov_block.20.weight"].shape[-1],
                "upconv_crop": 1}  # PyTorch's padding 1
    if found.family == "srresnet":
        trunk_end = "bn" if "block7.1.running_mean" in tensors else "prelu"
        return {**sizes, "trunk_end": trunk_end, "output": "tanh"}
    return sizes


_GITHUB = "https://github.com/{}/raw/{}/{}"
_DROPBOX = "https://www.dropbox.com/s/{}/srcnn_x{}.pth?dl=0"
RELEASED: tuple[ReleasedWeights, ...] = (
    *(ReleasedWeights("vdsr", scale, "model_epoch_50.pth",
                      _GITHUB.format("twtygqyy/pytorch-vdsr",
                                     "5ea721fbcc7cc1c5fff12dc805c660d9fc957985",
                                     "model/model_epoch_50.pth"),
                      "pytorch-vdsr", note="a whole pickled model; one network for x2, x3 and "
                      "x4; no digest published")
      for scale in (2, 3, 4)),
    ReleasedWeights("lapsrn", 4, "model_epoch_100.pth",
                    _GITHUB.format("twtygqyy/pytorch-LapSRN",
                                   "81c91a647a8f693ca8b95f338c2c6242b0de3fe9",
                                   "model/model_epoch_100.pth"),
                    "pytorch-LapSRN", note="a whole pickled model; no digest published"),
    *(ReleasedWeights("fsrcnn", scale, f"fsrcnn_x{scale}.pth",
                      _GITHUB.format("yjn870/FSRCNN-pytorch", commit,
                                     f"weights/fsrcnn_x{scale}.pth"),
                      "FSRCNN-pytorch", note="no digest published")
      for scale, commit in ((2, "ecd36324887023ea95e7224353d6836773207551"),
                            (3, "ecd36324887023ea95e7224353d6836773207551"),
                            (4, "597b52f7e8118ea014c079d32193a712181e003b"))),
    *(ReleasedWeights("srcnn", scale, f"srcnn_x{scale}.pth", _DROPBOX.format(share, scale),
                      "SRCNN-pytorch", note="yjn870/SRCNN-pytorch README; no digest published")
      for scale, share in ((2, "rxluu1y8ptjm4rn"), (3, "zn4fdobm2kw0c58"),
                           (4, "pd5b2ketm0oamhj"))),
    *(ReleasedWeights(model, scale, f"netG_epoch_{scale}_100.pth",
                      _GITHUB.format("leftthomas/SRGAN",
                                     "b0323c6ca4ca920f7daa41ba05f44bd220557cd9",
                                     f"epochs/netG_epoch_{scale}_100.pth"),
                      "leftthomas SRGAN", note="GAN-trained generator (5 blocks); superres's "
                      "srgan is x4 only, so x2 loads as srresnet; no digest published")
      for model, scale in (("srresnet", 2), ("srgan", 4))),
)

REIMPL_FAMILY = Family(
    "upstream PyTorch re-implementation's (pytorch-vdsr, pytorch-LapSRN, yjn870's SRCNN, "
    "FSRCNN or ESPCN, leftthomas SRGAN)",
    SPECS, LAYOUTS, RELEASED, _read,
    upsampler=r"upsampler(\.\d+)*\.weight|levels\.\d+\.features\.20\.weight",
    tensors=_tensors, options=_options,
)
