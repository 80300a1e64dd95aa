"""The authors' released EDSR, RDN and RCAN checkpoints: their key layouts and releases.

Released files come in four key layouts: EDSR-PyTorch's (EDSR, and RCAN's official code,
which shares it), EDSR-PyTorch's RDN, yjn870's RDN-pytorch (re-released by torchSR), and
BasicSR's (optionally wrapped in `params` / `params_ema`). The architecture (family,
channels, blocks, scale) is read from the tensor shapes, as spandrel does.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping

from torch import Tensor

from superres.models.convert.mechanism import (
    Architecture,
    Family,
    Layout,
    ReleasedWeights,
    Rule,
    indices,
    sub_pixel_factor,
)
from superres.models.edsr import EDSR, EDSR_BASELINE
from superres.models.rcan import RCAN
from superres.models.rdn import RDN
from superres.models.registry import ModelSpec

SPECS: dict[str, ModelSpec] = {spec.name: spec for spec in (EDSR_BASELINE, EDSR, RDN, RCAN)}

_EDSR_ZOO = "https://cv.snu.ac.kr/research/EDSR/models/"
_DRIVE = "https://drive.google.com/uc?id="
_TORCHSR = "https://github.com/Coloquinte/torchSR/releases/download/v1.0.3/"
_RCAN_ZIP = "https://www.dropbox.com/s/mjbcqkd4nwhr6nu/models_ECCV2018RCAN.zip?dl=0"
_BASICSR_NOTE = (
    "BasicSR's conversion of the official model; Google Drive id from BasicSR's "
    "scripts/download_pretrained_models.py"
)
_CCCV_NOTE = "; full sha256 as listed by the cccv package's EDSR config"

RELEASED: tuple[ReleasedWeights, ...] = (
    # EDSR-PyTorch's model zoo (src/model/edsr.py `url`)
    *(ReleasedWeights(model, scale, f"{stem}-{prefix}.pt", f"{_EDSR_ZOO}{stem}-{prefix}.pt",
                      "EDSR-PyTorch", prefix)
      for model, scale, stem, prefix in (
          ("edsr-baseline", 2, "edsr_baseline_x2", "1bc95232"),
          ("edsr-baseline", 3, "edsr_baseline_x3", "abf2a44e"),
          ("edsr-baseline", 4, "edsr_baseline_x4", "6b446fab"),
          ("edsr", 2, "edsr_x2", "0edfb8a3"),
          ("edsr", 3, "edsr_x3", "ea3ef2c6"),
          ("edsr", 4, "edsr_x4", "4f62e9ef"),
      )),
    *(ReleasedWeights(model, scale, f"{stem}-{prefix}.pth", f"{_DRIVE}{drive_id}", "BasicSR",
                      prefix, sha256, _BASICSR_NOTE + (_CCCV_NOTE if sha256 else ""))
      for model, scale, stem, prefix, drive_id, sha256 in (
          ("edsr-baseline", 2, "EDSR_Mx2_f64b16_DIV2K_official", "3ba7b086",
           "1mREMGVDymId3NzIc2u90sl_X4-pb4ZcV",
           "3ba7b0861913de93740110738fb621410651897e391e8057b7b6104c4f999254"),
          ("edsr-baseline", 3, "EDSR_Mx3_f64b16_DIV2K_official", "6908f88a",
           "1EriqQqlIiRyPbrYGBbwr_FZzvb3iwqz5",
           "6908f88a1be95e7112f480b7b1d9608ad83b4ffa0c227416a6376f6b036a77f3"),
          ("edsr-baseline", 4, "EDSR_Mx4_f64b16_DIV2K_official", "0c287733",
           "1bCK6cFYU01uJudLgUUe-jgx-tZ3ikOWn",
           "0c287733e70d1b8b8fc5885613ecbe451e5f3010bcae0307612ef5e4aa08dd5f"),
          ("edsr", 2, "EDSR_Lx2_f256b32_DIV2K_official", "be38e77d",
           "15257lZCRZ0V6F9LzTyZFYbbPrqNjKyMU", None),
          ("edsr", 3, "EDSR_Lx3_f256b32_DIV2K_official", "3660f70d",
           "18q_D434sLG_rAZeHGonAX8dkqjoyZ2su", None),
          ("edsr", 4, "EDSR_Lx4_f256b32_DIV2K_official", "76ee1c8f",
           "1GCi30YYCzgMCcgheGWGusP9aWKOAy5vl", None),
      )),
    # The authors' RCAN models: one zip (link in EDSR-PyTorch's demo.sh), no published digest.
    *(ReleasedWeights("rcan", scale, f"RCAN_BIX{scale}.pt", _RCAN_ZIP, "EDSR-PyTorch",
                      note="a member of models_ECCV2018RCAN.zip")
      for scale in (2, 3, 4)),
    *(ReleasedWeights("rcan", scale, f"rcan_x{scale}.pt", f"{_TORCHSR}rcan_x{scale}.pt",
                      "EDSR-PyTorch", note="torchSR's re-release of the official RCAN weights")
      for scale in (2, 3, 4)),
    # No PyTorch release of the authors' RDN (theirs is Torch7); yjn870's retrained weights:
    *(ReleasedWeights("rdn", scale, f"rdn_x{scale}.pth",
                      f"https://www.dropbox.com/s/{share}/rdn_x{scale}.pth?dl=0",
                      "RDN-pytorch", note="yjn870/RDN-pytorch, trained on [0, 1] images")
      for scale, share in ((2, "pd52pkmaik1ri0h"), (3, "56topxdwm6rakwd"),
                           (4, "yphiyivb1v7jya2"))),
    *(ReleasedWeights("rdn", scale, f"rdn_x{scale}.pt", f"{_TORCHSR}rdn_x{scale}.pt",
                      "RDN-pytorch", note="torchSR's re-release of yjn870's weights; torchSR "
                      "measures x3 0.7 dB below the paper on Set5")
      for scale in (2, 3, 4)),
)


def _stage(m: re.Match[str]) -> str:
    """An official Sequential index 2k (conv k, then its pixel shuffle) -> our stage k."""
    return f"upsampler.0.{int(m[1]) // 2}.0.{m[2]}"


def _edsr_pytorch_rules(keys: list[str]) -> list[Rule]:
    return [
        (r"(sub_mean|add_mean)\.(weight|bias)", r"\1.\2"),
        (r"head\.0\.(.+)", r"head.\1"),
        (r"(body\..+)\.conv_du\.(.+)", r"body.\1.excite.\2"),
        (r"body\.(.+)", r"body.body.\1"),
        (r"tail\.0\.(\d+)\.(.+)", _stage),
        (r"tail\.1\.(.+)", r"upsampler.1.\1"),
    ]


def _rdn_edsr_pytorch_rules(keys: list[str]) -> list[Rule]:
    last = max(indices(keys, r"UPNet\.(\d+)\.weight"), default=-1)  # the output conv
    return [
        (r"SFENet1\.(.+)", r"head.\1"),
        (r"SFENet2\.(.+)", r"body.body.0.\1"),
        (r"RDBs\.(\d+)\.convs\.(\d+)\.conv\.0\.(.+)",
         r"body.body.1.blocks.\1.body.dense.\2.conv.\3"),
        (r"RDBs\.(\d+)\.LFF\.(.+)", r"body.body.1.blocks.\1.body.fusion.\2"),
        (r"GFF\.([01])\.(.+)", r"body.body.1.fusion.\1.\2"),
        (rf"UPNet\.{last}\.(.+)", r"upsampler.1.\1"),
        (r"UPNet\.(\d+)\.(.+)", _stage),
    ]


def _rdn_yjn870_rules(keys: list[str]) -> list[Rule]:
    return [
        (r"sfe1\.(.+)", r"head.\1"),
        (r"sfe2\.(.+)", r"body.body.0.\1"),
        (r"rdbs\.(\d+)\.layers\.(\d+)\.conv\.(.+)",
         r"body.body.1.blocks.\1.body.dense.\2.conv.\3"),
        (r"rdbs\.(\d+)\.lff\.(.+)", r"body.body.1.blocks.\1.body.fusion.\2"),
        (r"gff\.([01])\.(.+)", r"body.body.1.fusion.\1.\2"),
        (r"upscale\.(\d+)\.(.+)", _stage),
        (r"output\.(.+)", r"upsampler.1.\1"),
    ]


def _basicsr_rules(keys: list[str]) -> list[Rule]:
    # BasicSR names the convolution closing a group or the trunk; ours is the last index.
    trunk_end = len(indices(keys, r"body\.(\d+)\..+"))
    group_end = len(indices(keys, r"body\.0\.residual_group\.(\d+)\..+"))
    return [
        (r"conv_first\.(.+)", r"head.\1"),
        (r"body\.(\d+)\.conv([12])\.(.+)",
         lambda m: f"body.body.{m[1]}.body.{2 * int(m[2]) - 2}.{m[3]}"),
        (r"body\.(\d+)\.residual_group\.(\d+)\.rcab\.([02])\.(.+)",
         r"body.body.\1.body.\2.body.\3.\4"),
        (r"body\.(\d+)\.residual_group\.(\d+)\.rcab\.3\.attention\.([13])\.(.+)",
         lambda m: f"body.body.{m[1]}.body.{m[2]}.body.3.excite.{int(m[3]) - 1}.{m[4]}"),
        (r"body\.(\d+)\.conv\.(.+)", rf"body.body.\1.body.{group_end}.\2"),
        (r"conv_after_body\.(.+)", rf"body.body.{trunk_end}.\1"),
        (r"upsample\.(\d+)\.(.+)", _stage),
        (r"conv_last\.(.+)", r"upsampler.1.\1"),
    ]


LAYOUTS = (
    Layout("EDSR-PyTorch", "head.0.weight", _edsr_pytorch_rules),
    Layout("EDSR-PyTorch RDN", "SFENet1.weight", _rdn_edsr_pytorch_rules),
    Layout("RDN-pytorch", "sfe1.weight", _rdn_yjn870_rules, rgb_range=1.0),  # and torchSR's
    Layout("BasicSR", "conv_first.weight", _basicsr_rules),
)



def _read_scale(state: Mapping[str, Tensor], name: Callable[[str], str]) -> int:
    """The product of the sub-pixel stages' factors: stage k's conv has channels x f_k^2
    outputs, `channels` being the input width of the output conv."""
    stages = indices(state, r"upsampler\.0\.(\d+)\.0\.weight")
    if not stages or "upsampler.1.weight" not in state:
        raise ValueError("no sub-pixel upsampler found (its convolutions and the output conv)")
    channels = state["upsampler.1.weight"].shape[1]
    convs = [f"upsampler.0.{k}.0.weight" for k in stages]
    return math.prod(sub_pixel_factor(state, key, channels, name(key)) for key in convs)


def _read(state: Mapping[str, Tensor], name: Callable[[str], str]) -> Architecture:
    """EDSR, RCAN (channel attention: `excite`) or RDN (dense layers)."""
    keys = list(state)
    channels = state["head.weight"].shape[0]
    scale = _read_scale(state, name)
    if any(".excite." in key for key in keys):
        groups = len(indices(keys, r"body\.body\.(\d+)\.body\.0\.body\.0\.weight"))
        blocks = len(indices(keys, r"body\.body\.0\.body\.(\d+)\.body\.0\.weight"))
        squeezed = state["body.body.0.body.0.body.3.excite.0.weight"].shape[0]
        sizes = (("groups", groups), ("blocks", blocks), ("channels", channels),
                 ("reduction", channels // squeezed))
        return Architecture("rcan", scale, sizes)
    if any(".dense." in key for key in keys):
        block = "body.body.1.blocks.0.body"
        sizes = (
            ("D", len(indices(keys, r"body\.body\.1\.blocks\.(\d+)\.body\.fusion\.weight"))),
            ("C", len(indices(keys, rf"{re.escape(block)}\.dense\.(\d+)\.conv\.weight"))),
            ("G", state[f"{block}.dense.0.conv.weight"].shape[0]),
            ("G0", channels),
        )
        return Architecture("rdn", scale, sizes)
    blocks = len(indices(keys, r"body\.body\.(\d+)\.body\.0\.weight"))
    return Architecture("edsr", scale, (("blocks", blocks), ("channels", channels)))


EDSR_FAMILY = Family("EDSR, RDN or RCAN", SPECS, LAYOUTS, RELEASED, _read,
                     upsampler=r"upsampler\.0\..+\.weight")
describe = EDSR_FAMILY.describe
convert_for = EDSR_FAMILY.convert_for
convert_state_dict = EDSR_FAMILY.convert_state_dict
