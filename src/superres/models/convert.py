"""Loading the authors' released EDSR, RDN and RCAN checkpoints onto superres's modules.

Released files come in four key layouts: EDSR-PyTorch's (EDSR, and RCAN's official code,
which shares it), EDSR-PyTorch's RDN, yjn870's RDN-pytorch (re-released by torchSR), and
BasicSR's (optionally wrapped in `params` / `params_ema`). `convert_state_dict` renames their
keys to ours, reads the architecture from the tensor shapes (family, channels, blocks, scale,
as spandrel does) and refuses a checkpoint that is not the requested model, naming the keys
and shapes that differ. Files are read without running code from them:
`torch.load(weights_only=True)` for .pt/.pth, safetensors otherwise.
"""

from __future__ import annotations

import math
import pickle
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import Tensor, nn

from superres.files import file_digest
from superres.models.edsr import EDSR, EDSR_BASELINE
from superres.models.rcan import RCAN
from superres.models.rdn import RDN
from superres.models.registry import ModelSpec
from superres.nn.residual import MeanShift

Tensors = dict[str, Tensor]
SPECS: dict[str, ModelSpec] = {spec.name: spec for spec in (EDSR_BASELINE, EDSR, RDN, RCAN)}


@dataclass(frozen=True)
class ReleasedWeights:
    """A published checkpoint: where it is, its key layout, and how to recognise the file.

    `sha256_prefix` is the hex after the last '-' in the file name: torch.hub's naming
    convention, the first 8 hex digits of the file's sha256 (torch.hub checks downloads
    against it). `sha256` is the full digest where one is published.
    """

    model: str
    scale: int
    file: str
    url: str
    layout: str
    sha256_prefix: str | None = None
    sha256: str | None = None
    note: str = ""


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


@dataclass(frozen=True)
class Architecture:
    """What a state dict in superres's key layout holds, read from its tensor shapes."""

    family: str  # "edsr", "rcan" or "rdn"
    scale: int
    sizes: tuple[tuple[str, int], ...]

    def __str__(self) -> str:
        sizes = ", ".join(f"{name}={value}" for name, value in self.sizes)
        return f"{self.family.upper()} x{self.scale} ({sizes})"


Rule = tuple[str, str | Callable[[re.Match[str]], str]]


def _indices(keys: Iterable[str], pattern: str) -> list[int]:
    """The distinct integers that `pattern`'s first group captures in `keys`, sorted."""
    return sorted({int(m[1]) for key in keys if (m := re.fullmatch(pattern, key))})


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
    last = max(_indices(keys, r"UPNet\.(\d+)\.weight"), default=-1)  # the output conv
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
    trunk_end = len(_indices(keys, r"body\.(\d+)\..+"))
    group_end = len(_indices(keys, r"body\.0\.residual_group\.(\d+)\..+"))
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


@dataclass(frozen=True)
class Layout:
    """A released key layout: a key only it has, its renaming rules, and the pixel range
    [0, rgb_range] its networks were trained on."""

    name: str
    marker: str
    rules: Callable[[list[str]], list[Rule]]
    rgb_range: float = 255.0


LAYOUTS = (
    Layout("EDSR-PyTorch", "head.0.weight", _edsr_pytorch_rules),
    Layout("EDSR-PyTorch RDN", "SFENet1.weight", _rdn_edsr_pytorch_rules),
    Layout("RDN-pytorch", "sfe1.weight", _rdn_yjn870_rules, rgb_range=1.0),  # and torchSR's
    Layout("BasicSR", "conv_first.weight", _basicsr_rules),
)


def _tensors(state: Mapping[str, Any]) -> Tensors:
    """The tensors of a loaded checkpoint; BasicSR's wrapper is opened (EMA weights first)."""
    for wrapper in ("params_ema", "params"):
        if isinstance(state.get(wrapper), Mapping):
            state = state[wrapper]
            break
    others = sorted(k for k, v in state.items() if not isinstance(v, Tensor))
    if others:
        raise ValueError(f"not a state dict of tensors: {', '.join(others[:5])} are not tensors")
    return dict(state)


def _layout(tensors: Tensors) -> Layout:
    for layout in LAYOUTS:
        if layout.marker in tensors:
            return layout
    known = "; ".join(f"{layout.name}: {layout.marker}" for layout in LAYOUTS)
    raise ValueError(
        f"not an EDSR, RDN or RCAN checkpoint in a known layout: it has keys like "
        f"{', '.join(list(tensors)[:4])}; each known layout has one key ({known})"
    )


def _rename(tensors: Tensors, layout: Layout) -> tuple[Tensors, dict[str, str], list[str]]:
    """(our tensors, our key -> the checkpoint's key, the checkpoint's keys no rule maps)."""
    rules = layout.rules(list(tensors))
    ours: Tensors = {}
    origin: dict[str, str] = {}
    unmapped = []
    for key, tensor in tensors.items():
        for pattern, replacement in rules:
            if m := re.fullmatch(pattern, key):
                new = replacement(m) if callable(replacement) else m.expand(replacement)
                ours[new], origin[new] = tensor, key
                break
        else:
            unmapped.append(key)
    return ours, origin, unmapped


def _shape(tensor: Tensor) -> tuple[int, ...]:
    return tuple(tensor.shape)


def _read_scale(state: Mapping[str, Tensor], name: Callable[[str], str]) -> int:
    """The product of the sub-pixel stages' factors: stage k's conv has channels x f_k^2
    outputs, `channels` being the input width of the output conv."""
    stages = _indices(state, r"upsampler\.0\.(\d+)\.0\.weight")
    if not stages or "upsampler.1.weight" not in state:
        raise ValueError("no sub-pixel upsampler found (its convolutions and the output conv)")
    channels = state["upsampler.1.weight"].shape[1]
    scale = 1
    for k in stages:
        key = f"upsampler.0.{k}.0.weight"
        factor = math.isqrt(state[key].shape[0] // channels)
        if factor < 2 or factor * factor * channels != state[key].shape[0]:
            raise ValueError(
                f"{name(key)} {_shape(state[key])} is no sub-pixel convolution to {channels} "
                "channels times a square"
            )
        scale *= factor
    return scale


def describe(state: Mapping[str, Tensor], origin: Mapping[str, str] | None = None) -> Architecture:
    """The family, scale and sizes of a state dict in superres's key layout (`origin` gives
    the checkpoint's own names for error messages)."""
    def name(key: str) -> str:
        return (origin or {}).get(key, key)

    keys = list(state)
    try:
        channels = state["head.weight"].shape[0]
        scale = _read_scale(state, name)
        if any(".excite." in key for key in keys):
            groups = len(_indices(keys, r"body\.body\.(\d+)\.body\.0\.body\.0\.weight"))
            blocks = len(_indices(keys, r"body\.body\.0\.body\.(\d+)\.body\.0\.weight"))
            squeezed = state["body.body.0.body.0.body.3.excite.0.weight"].shape[0]
            sizes = (("groups", groups), ("blocks", blocks), ("channels", channels),
                     ("reduction", channels // squeezed))
            return Architecture("rcan", scale, sizes)
        if any(".dense." in key for key in keys):
            block = "body.body.1.blocks.0.body"
            sizes = (
                ("D", len(_indices(keys, r"body\.body\.1\.blocks\.(\d+)\.body\.fusion\.weight"))),
                ("C", len(_indices(keys, rf"{re.escape(block)}\.dense\.(\d+)\.conv\.weight"))),
                ("G", state[f"{block}.dense.0.conv.weight"].shape[0]),
                ("G0", channels),
            )
            return Architecture("rdn", scale, sizes)
        blocks = len(_indices(keys, r"body\.body\.(\d+)\.body\.0\.weight"))
        return Architecture("edsr", scale, (("blocks", blocks), ("channels", channels)))
    except KeyError as err:
        raise ValueError(f"cannot read the architecture: no {name(err.args[0])}") from err


def _mean_shift(module: MeanShift, rgb_range: float) -> Tensors:
    """The official mean shift of a network trained on [0, rgb_range] images, written for
    `module`, which scales by its own rgb_range: identical when the two ranges agree."""
    ratio = rgb_range / module.rgb_range
    official = MeanShift(module.sign, rgb_range, module.mean)
    if module.sign < 0:
        return {"weight": official.weight * ratio, "bias": official.bias}
    return {"weight": official.weight / ratio, "bias": official.bias / ratio}


def _differences(
    ours: Tensors, expected: Mapping[str, Tensor], origin: Mapping[str, str], unmapped: list[str]
) -> list[str]:
    """Readable lines naming missing, unexpected and wrongly shaped keys (5 of each)."""
    missing = [k for k in expected if k not in ours]
    unexpected = unmapped + [origin.get(k, k) for k in ours if k not in expected]
    wrong = [
        f"{origin.get(k, k)} {_shape(v)} where {_shape(expected[k])} is expected"
        for k, v in ours.items() if k in expected and v.shape != expected[k].shape
    ]
    lines = []
    for label, items in (("missing (our names)", missing), ("unexpected", unexpected),
                         ("wrong shape", wrong)):
        if items:
            more = f" and {len(items) - 5} more" if len(items) > 5 else ""
            lines.append(f"{label}: {'; '.join(items[:5])}{more}")
    return lines


def convert_for(state: Mapping[str, Any], target: nn.Module, what: str = "the model") -> Tensors:
    """`state`, a released EDSR/RDN/RCAN checkpoint in any known layout, as a state dict for
    `target` (any network built from superres's EDSR-family parts, reduced ones included),
    or a ValueError saying what the checkpoint is and which keys and shapes do not fit."""
    tensors = _tensors(state)
    layout = _layout(tensors)
    ours, origin, unmapped = _rename(tensors, layout)
    expected = target.state_dict()
    found, wanted = describe(ours, origin), describe(expected)
    for name, module in target.named_modules():
        if isinstance(module, MeanShift) and f"{name}.weight" not in ours:
            for key, value in _mean_shift(module, layout.rgb_range).items():
                ours[f"{name}.{key}"] = value
    differences = _differences(ours, expected, origin, unmapped)
    if found != wanted or differences:
        stages = [f"{origin[k]} {_shape(ours[k])}" for k in ours
                  if k.startswith("upsampler.0.") and k.endswith(".weight")]
        raise mismatch_error(layout.name, found, wanted, what, ", ".join(stages), differences)
    return {key: ours[key] for key in expected}


def _spec(model_name: str) -> ModelSpec:
    if model_name not in SPECS:
        raise ValueError(f"no converter for {model_name!r}; known: {', '.join(SPECS)}")
    return SPECS[model_name]


def convert_state_dict(state: Mapping[str, Any], model_name: str, scale: int) -> Tensors:
    """A released checkpoint as the state dict of superres's `model_name` at `scale`; a
    checkpoint of another architecture or scale is refused with a ValueError."""
    spec = _spec(model_name)
    spec.check_scale(scale)
    with torch.device("meta"):  # shapes only: nothing is allocated or initialised
        target = spec.build(scale)
    return convert_for(state, target, f"{model_name} x{scale}")


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The contents of a safetensors file, or of any other checkpoint (.pt, .pth, .pth.tar)
    read with `weights_only=True`: a file holding other Python objects is refused and no
    code in it runs."""
    path = Path(path)
    if path.suffix.lower() == ".safetensors":
        return load_file(str(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        reason = next((line.strip() for line in str(err).splitlines() if "Unsupported" in line),
                      "it is not made of tensors and plain containers only")
        raise ValueError(
            f"{path.name} holds Python objects, not just tensors; refusing to unpickle it "
            f"(weights_only=True): {reason}"
        ) from err
    if not isinstance(state, Mapping):
        raise ValueError(f"{path.name} holds a {type(state).__name__}, not a state dict")
    return dict(state)


def check_release(
    path: str | Path, releases: Sequence[ReleasedWeights] | None = None
) -> ReleasedWeights | None:
    """The release (of `releases`, default every known one) a file saved under its published
    name is, after checking its sha256 against the published digest (a damaged or
    substituted file is refused); None for a file under another name, which cannot be
    checked."""
    path = Path(path)
    if releases is None:
        from superres.models import convert_gan

        releases = (*RELEASED, *convert_gan.RELEASED)
    release = next((r for r in releases if r.file == path.name), None)
    published = (release.sha256 or release.sha256_prefix) if release else None
    if published:
        actual = file_digest(path)
        if not actual.startswith(published):
            raise ValueError(
                f"{path.name} has sha256 {actual}, but the published file's starts with "
                f"{published}: the download is damaged or not the authors' file"
            )
    return release


def mismatch_error(
    layout: str, found: Architecture, wanted: Architecture, what: str, scale_keys: str,
    differences: list[str],
) -> ValueError:
    """The error for a checkpoint that does not fit: what it holds, what was wanted, and
    which keys and shapes differ."""
    if found.family == wanted.family and found.sizes == wanted.sizes:
        headline = f"is for x{found.scale} (upsampler {scale_keys})"
    else:
        headline = f"holds {found}"
    return ValueError(f"this {layout} checkpoint {headline}, but {what} is {wanted}"
                      + "".join(f"\n  {line}" for line in differences))


def load_released(path: str | Path, model_name: str, scale: int) -> nn.Module:
    """`model_name` built for `scale` with the weights of a released checkpoint file, in
    eval mode; a file under a published name is checked against its digest first. Models
    of the perceptual family (SRResNet, ESRGAN, SRVGG) go through `convert_gan`."""
    from superres.models import convert_gan

    check_release(path)
    family = convert_gan if model_name in convert_gan.SPECS else sys.modules[__name__]
    state = family.convert_state_dict(read_checkpoint(path), model_name, scale)
    model = family._spec(model_name).build(scale)
    model.load_state_dict(state)
    return model.eval()
