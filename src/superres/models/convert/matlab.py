"""The authors' MATLAB releases of SRCNN, FSRCNN, VDSR, LapSRN and MS-LapSRN: reading them
without MATLAB, their layouts, and the test-time conventions their weights need.

The files are MATLAB v5 `.mat` (SciPy reads them as arrays; nothing in them runs). Four
storages are known, each turned into tensors in PyTorch's layout under its MATLAB names:
- SRCNN (`weights_conv1..3`, `biases_conv1..3`): each k x k kernel is a flat k^2 vector in
  MATLAB's column-major order, as the authors' SRCNN.m reshapes it for imfilter (correlation);
- FSRCNN (cells `weights_conv{i}`, `biases_conv{i}`, `prelu_conv{i}`, one PReLU slope per
  layer): the same flat kernels, the last cell the deconvolution's, as their deconv.m adds it;
- VDSR (`model.weight{i}`, `model.bias{i}`): MatConvNet filters, height x width x in x out;
- LapSRN and MS-LapSRN: MatConvNet DagNN `net` structs, whose parameters are read by name and
  whose layers are checked to be the network superres builds (pads, crops, leaks).

Sizes are read from the shapes: SRCNN's f1-f2-f3 and n1/n2, FSRCNN's d, s, m, VDSR's depth,
LapSRN's levels (the scale) and convolutions per level (5 in the x8 release, 10 in x2/x4),
MS-LapSRN's D, and its R from the DagNN's layers. The authors' test code differs from a plain
forward pass, and their weights are loaded with its conventions (builder options saved with
the converted weights): SRCNN and FSRCNN pad by repeating edge pixels (`padding_mode=
"replicate"`; FSRCNN's deconvolution sees one replicated pixel per side, and is one HR pixel off
in the x3 models: `deconv_crop=3`), LapSRN and MS-LapSRN crop their feature upsampler by
[0 1 0 1] (`upconv_crop=0`). VDSR's zero padding is superres's.
Only LapSRN's files hold their scale; the releases' sha256 give the others' (`RELEASED`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from superres.models.convert.mechanism import (
    Architecture,
    Family,
    Layout,
    ReleasedWeights,
    Rule,
    Tensors,
    early_cnn_architecture,
    fsrcnn_rule,
    indices,
)
from superres.models.fsrcnn import FSRCNN, FSRCNN_S
from superres.models.lapsrn import LAPSRN, MS_LAPSRN
from superres.models.registry import ModelSpec
from superres.models.srcnn import SRCNN, SRCNN_915
from superres.models.vdsr import VDSR

SPECS: dict[str, ModelSpec] = {
    spec.name: spec for spec in (SRCNN, SRCNN_915, FSRCNN, FSRCNN_S, VDSR, LAPSRN, MS_LAPSRN)
}
EXPECTED = "the authors' SRCNN, FSRCNN, VDSR, LapSRN or MS-LapSRN weights (MATLAB v5 .mat)"

# What each family needs beyond its sizes to compute what the authors' test code computes.
CONVENTIONS: dict[str, dict[str, Any]] = {
    "srcnn": {"padding_mode": "replicate"},  # SRCNN.m: imfilter(..., 'same', 'replicate')
    "fsrcnn": {"padding_mode": "replicate"},  # FSRCNN.m the same; deconv.m pads 1 pixel
    "vdsr": {},  # vl_nnconv(..., 'Pad', 1): zeros, as superres
    "lapsrn": {"upconv_crop": 0},  # dagnn.ConvTranspose crop [0 1 0 1]
    "ms-lapsrn": {"upconv_crop": 0},
}

_GITHUB = "https://github.com/{}/raw/{}/{}"
_SRCNN = ("Piyush3dB/SR-convnet", "a95ab414a5b42c4483e034d8b133e893a73b53fb")
_FSRCNN = ("yaBorn/Super-resolution", "74efc0394f0a07b615d6a25be412cf4ffc72169a")
_VDSR = ("huangzehao/caffe-vdsr", "5a839232d179c10736ed94e7142068b168b61cf6")
_LAPSRN = ("phoenix104104/LapSRN", "95154bba82a3aab9bdaec8e0eedd4187babc5ed2")


def _release(model: str, scale: int, where: tuple[str, str], file: str, layout: str,
             sha256: str, note: str) -> ReleasedWeights:
    """A release kept in a public repository at a fixed commit; `file` is its path there."""
    url = _GITHUB.format(*where, file.replace(" ", "%20"))
    return ReleasedWeights(model, scale, file, url, layout, sha256=sha256, note=note)


_SRCNN_NOTE = "the authors' SRCNN test release (also in kjw0612/rcn and thomas-koehler/SupER)"
_FSRCNN_NOTE = "a copy of the authors' FSRCNN_test release"
RELEASED: tuple[ReleasedWeights, ...] = (
    *(_release("srcnn", scale, _SRCNN, f"model/9-5-5(ImageNet)/x{scale}.mat", "SRCNN", sha,
               _SRCNN_NOTE)
      for scale, sha in (
          (2, "dc06d52ab0ecfb75a4222a33c06c2c23287cf67abbd75b869a178f6305f8cdc1"),
          (3, "fa2ee366d328b942b971c80c24f48dc2b015d5ed4b5790070f720ccfb6ab1578"),
          (4, "3f94150d24e5b60dab2b74f4eaf358aefdc72cbe724d86990435bf877ed452ed"))),
    _release("srcnn-915", 3, _SRCNN, "model/9-1-5(91 images)/x3.mat", "SRCNN",
             "ef05325a96221ab9399db844bc833f687796a1078bfa6aacc6930bde60ca5b10", _SRCNN_NOTE),
    *(_release("fsrcnn", scale, _FSRCNN,
               f"Algorithm/FSRCNN/FSRCNN_test/model/FSRCNN/x{scale}.mat", "FSRCNN", sha,
               _FSRCNN_NOTE)
      for scale, sha in (
          (2, "1d00d037c4eae56d898e1a1e62b736eb11bb2ec112b2fd29d7ead0bff5e4e8b5"),
          (3, "9cbd62ce9cb8d0236d21c7b1311b1ee7f53ff227fd4a5ea62ddaf347870a80a0"),
          (4, "af005f2ba6e90ef45f1807045c3f78132e15b57d9056e4691c79e34863dbdd4f"))),
    _release("fsrcnn-s", 3, _FSRCNN, "Algorithm/FSRCNN/FSRCNN_test/model/FSRCNN-s/x3.mat",
             "FSRCNN", "1252c30126461e0ef4a1acf616e8f9cca4ac8a34285d48e88f6b4d410933876f",
             _FSRCNN_NOTE),
    *(_release("vdsr", scale, _VDSR, "Test/VDSR_Official.mat", "VDSR",
               "f613166660840af1a2ca47e31b0337b951e7c4e094364f6135a16d81a55c323c",
               "the official VDSR model re-exported; one network for x2, x3 and x4")
      for scale in (2, 3, 4)),
    *(_release("lapsrn", scale, _LAPSRN, f"pretrained_models/LapSRN_x{scale}.mat",
               "MatConvNet DagNN", sha, "the authors' release")
      for scale, sha in (
          (2, "e368225004e2d5e49d772c5c4eb16c3f28f7fe3b68fec7a9bb91f55e25602baa"),
          (4, "1d845a3efdca8848968df9e216931419e3b1122373a233d612b4f599985e6367"),
          (8, "a887221465fe22ebda8ad5963cf812db807e7a9aa8e9d9453aee60e237af5e10"))),
    *(_release("ms-lapsrn", scale, _LAPSRN, "pretrained_models/MSLapSRN_D5R8.mat",
               "MatConvNet DagNN",
               "96dbabe91e964a83b545dbd98580586c5ae312b4f7294ea10519100d0dd1d52d",
               "the authors' release; one network for x2, x4 and x8")
      for scale in (2, 4, 8)),
)


# ---------------------------------------------------------------- reading .mat files


def read_mat(path: Path) -> dict[str, Any]:
    """The variables of a MATLAB v5 .mat file (arrays; cells and structs as NumPy object
    arrays), or a one-line ValueError saying what the file is instead."""
    from scipy.io import loadmat  # here: `import superres` must stay cheap
    from scipy.io.matlab import MatReadError

    with open(path, "rb") as handle:
        head = handle.read(19)
    if head.startswith(b"MATLAB 7.3 MAT-file"):
        raise ValueError(f"{path.name} is a MATLAB v7.3 (HDF5) file, not {EXPECTED}")
    if not head.startswith(b"MATLAB 5.0 MAT-file"):
        begins = head.decode("latin-1").strip() or "nothing"
        raise ValueError(f"{path.name} is no MATLAB .mat file (it begins {begins!r}); "
                         f"expected {EXPECTED}")
    try:
        variables = loadmat(path)
    except (MatReadError, OSError, ValueError, IndexError, EOFError) as err:
        raise ValueError(f"{path.name} is a damaged or truncated .mat file ({err}); expected "
                         f"{EXPECTED}") from None
    return {name: value for name, value in variables.items() if not name.startswith("__")}


def _array(value: Any, what: str) -> np.ndarray:
    """A numeric array of a .mat file, or a ValueError naming it."""
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "fiu":
        raise ValueError(f"{what} is missing or not a numeric array")
    return value


def _cells(value: Any, what: str) -> list[Any]:
    """A MATLAB cell array's entries in MATLAB's (column-major) order."""
    if not isinstance(value, np.ndarray) or value.dtype != object:
        raise ValueError(f"{what} is not a cell array")
    return list(value.ravel(order="F"))


def _field(struct: Any, name: str, what: str) -> Any:
    """A field of a 1 x 1 MATLAB struct."""
    if not isinstance(struct, np.ndarray) or struct.dtype.names is None or struct.size != 1:
        raise ValueError(f"{what} is not a MATLAB struct")
    if name not in struct.dtype.names:
        raise ValueError(f"{what} has no field {name!r} (it has {', '.join(struct.dtype.names)})")
    return struct.flat[0][name]


def _text(value: Any) -> str:
    """A MATLAB char array as a str ('' for an empty one)."""
    return str(value.flat[0]) if isinstance(value, np.ndarray) and value.size else ""


def _tensor(array: np.ndarray) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def _vector(array: np.ndarray) -> Tensor:
    """Biases and slopes: MATLAB keeps them as n x 1 or 1 x n matrices."""
    return _tensor(array.ravel())


def flat_kernels(weights: np.ndarray, what: str) -> Tensor:
    """SRCNN's and FSRCNN's (a, k^2, b) kernels, kernel (j, :, i) a flat vector in MATLAB's
    column-major order, as a PyTorch (b, a, k, k) weight: (out, in) for their convolutions
    (a = inputs), (in, out) for FSRCNN's deconvolution (a = outputs)."""
    if weights.ndim != 3:
        raise ValueError(f"{what} {weights.shape} is not (inputs, taps, outputs)")
    first, area, last = weights.shape
    size = math.isqrt(area)
    if size * size != area:
        raise ValueError(f"{what} {weights.shape} does not hold square kernels ({area} taps)")
    return _tensor(weights.reshape(first, size, size, last, order="F").transpose(3, 0, 1, 2))


def matconvnet_filters(filters: np.ndarray) -> Tensor:
    """MatConvNet filters (height, width, in, out; trailing singleton dimensions dropped by
    MATLAB) as a PyTorch convolution weight (out, in, height, width). A transposed
    convolution's (height, width, out, in) becomes PyTorch's (in, out, height, width) alike."""
    filters = filters.reshape(*filters.shape, *(1,) * (4 - filters.ndim))
    return _tensor(filters.transpose(3, 2, 0, 1))


def _srcnn_tensors(variables: Mapping[str, Any]) -> Tensors:
    tensors = {}
    for layer in (1, 2, 3):
        name = f"weights_conv{layer}"
        weights = _array(variables.get(name), name)
        if weights.ndim == 2:  # conv1 (f1^2, n1) has one input, conv3 (n2, f3^2) one output
            weights = weights[None] if layer == 1 else weights[..., None]
        tensors[name] = flat_kernels(weights, name)
        bias = f"biases_conv{layer}"
        tensors[bias] = _vector(_array(variables.get(bias), bias))
    return tensors


def _fsrcnn_tensors(variables: Mapping[str, Any]) -> Tensors:
    tensors = {}
    for kind in ("weights_conv", "biases_conv", "prelu_conv"):
        for index, value in enumerate(_cells(variables.get(kind), kind), start=1):
            name = f"{kind}{{{index}}}"
            array = _array(value, name)
            if kind == "weights_conv":
                tensors[name] = flat_kernels(array, name)
            elif array.size:  # the deconvolution has no PReLU: an empty cell
                tensors[name] = _vector(array)
    return tensors


def _vdsr_tensors(variables: Mapping[str, Any]) -> Tensors:
    model = variables["model"]
    tensors = {}
    for kind in ("weight", "bias"):
        for index, value in enumerate(_cells(_field(model, kind, "model"), kind), start=1):
            name = f"model.{kind}{{{index}}}"
            read = matconvnet_filters if kind == "weight" else _vector
            tensors[name] = read(_array(value, name))
    return tensors


# What superres's LapSRN and MS-LapSRN compute, per kind of DagNN layer: the blocks' settings.
_DAGNN_BLOCKS: dict[str, dict[str, list[float]]] = {
    "conv": {"pad": [1, 1, 1, 1], "stride": [1, 1]},
    "upconv": {"upsample": [2, 2], "crop": [0, 1, 0, 1]},
    "img_up": {"upsample": [2, 2], "crop": [1, 1, 1, 1]},
    "relu": {"leak": [0.2]},
}


def _dagnn_layers(net: Any) -> list[str]:
    """The names of a DagNN's layers, after checking that each computes what superres's
    network does (a file whose pads, crops or leaks differ is refused, naming the layer)."""
    layers = []
    for layer in _field(net, "layers", "net").ravel():
        name, kind = _text(layer["name"]), _text(layer["type"])
        block = layer["block"]
        values = {field: block.flat[0][field] for field in (block.dtype.names or ())}
        settings = {field: value.astype(float).ravel().tolist()
                    for field, value in values.items() if value.dtype.kind in "fiub"}
        role = {"dagnn.Conv": "conv", "dagnn.ReLU": "relu",
                "dagnn.ConvTranspose": "img_up" if name.endswith("img_up") else "upconv"}
        expected = _DAGNN_BLOCKS.get(role.get(kind, ""), {})
        for field, value in expected.items():
            if settings.get(field) != value:
                raise ValueError(f"its {kind} layer {name} has {field} {settings.get(field)}, "
                                 f"where the authors' LapSRN releases have {value}")
        layers.append(name)
    return layers


def _dagnn_tensors(variables: Mapping[str, Any]) -> Tensors:
    net = variables["net"]
    _dagnn_layers(net)
    tensors = {}
    for param in _field(net, "params", "net").ravel():
        name = _text(param["name"])
        read = matconvnet_filters if name.endswith("_f") else _vector
        tensors[name] = read(_array(param["value"], name))
    return tensors


_STORAGES: dict[str, Callable[[Mapping[str, Any]], Tensors]] = {
    "weights_conv1": _srcnn_tensors,
    "weights_conv": _fsrcnn_tensors,
    "model": _vdsr_tensors,
    "net": _dagnn_tensors,
}


def mat_tensors(variables: Mapping[str, Any]) -> Tensors:
    """The arrays of an authors' .mat file in PyTorch's layouts, under their MATLAB names."""
    for marker, read in _STORAGES.items():
        if marker in variables:
            return read(variables)
    found = ", ".join(sorted(variables)) or "no variables"
    raise ValueError(f"it holds {found}, not weights_conv1 (SRCNN), weights_conv (FSRCNN), "
                     f"model (VDSR) or net (LapSRN, MS-LapSRN)")


# ---------------------------------------------------------------- layouts


_PART = {"f": "weight", "b": "bias"}


def _srcnn_rules(keys: list[str]) -> list[Rule]:
    return [(r"(weights|biases)_conv([123])",
             lambda m: f"body.{2 * int(m[2]) - 2}.{'weight' if m[1] == 'weights' else 'bias'}")]


def _fsrcnn_rules(keys: list[str]) -> list[Rule]:
    last = max(indices(keys, r"weights_conv\{(\d+)\}"), default=0)  # the deconvolution
    return [fsrcnn_rule(r"(weights|biases|prelu)_conv\{(\d+)\}", "weights", "prelu", last)]


def _vdsr_rules(keys: list[str]) -> list[Rule]:
    return [(r"model\.(weight|bias)\{(\d+)\}", lambda m: f"body.body.{2 * int(m[2]) - 2}.{m[1]}")]


def _lapsrn_rules(keys: list[str]) -> list[Rule]:
    # Levels are named from the output back (level1 is the last x2 step): ours from the input.
    levels = max(indices(keys, r"level(\d+)_upconv_f"), default=0)
    depth = len(indices(keys, r"level1_conv(\d+)_f"))

    def level(m: re.Match[str]) -> str:
        return f"levels.{levels - int(m[1])}"

    return [
        (r"input_conv_([fb])", lambda m: f"embed.0.{_PART[m[1]]}"),
        (r"level(\d+)_conv(\d+)_([fb])",
         lambda m: f"{level(m)}.features.{2 * int(m[2]) - 2}.{_PART[m[3]]}"),
        (r"level(\d+)_upconv_([fb])", lambda m: f"{level(m)}.features.{2 * depth}.{_PART[m[2]]}"),
        (r"level(\d+)_residual_conv_([fb])", lambda m: f"{level(m)}.residual.{_PART[m[2]]}"),
        (r"level(\d+)_img_up_f", lambda m: f"{level(m)}.image.weight"),
    ]


def _ms_lapsrn_rules(keys: list[str]) -> list[Rule]:
    return [  # one level, shared by every level and recursion
        (r"input_conv_([fb])", lambda m: f"embed.0.{_PART[m[1]]}"),
        (r"conv(\d+)_([fb])",
         lambda m: f"levels.0.features.0.block.{2 * int(m[1]) - 1}.{_PART[m[2]]}"),
        (r"upconv_([fb])", lambda m: f"levels.0.features.2.{_PART[m[1]]}"),
        (r"residual_conv_([fb])", lambda m: f"levels.0.residual.{_PART[m[1]]}"),
        (r"img_up_f", "levels.0.image.weight"),
    ]


LAYOUTS = (
    Layout("SRCNN", "weights_conv1", _srcnn_rules),
    Layout("FSRCNN", "weights_conv{1}", _fsrcnn_rules),
    Layout("VDSR", "model.weight{1}", _vdsr_rules),
    Layout("LapSRN DagNN", "level1_upconv_f", _lapsrn_rules),
    Layout("MS-LapSRN DagNN", "upconv_f", _ms_lapsrn_rules),
)


# ---------------------------------------------------------------- architectures


def _read(state: Mapping[str, Tensor], name: Callable[[str], str]) -> Architecture:
    """SRCNN, FSRCNN, VDSR, LapSRN (its levels give the scale) or MS-LapSRN."""
    if "embed.0.weight" in state:
        channels = state["embed.0.weight"].shape[0]
        if "levels.0.features.0.block.1.weight" in state:
            depth = len(indices(state, r"levels\.0\.features\.0\.block\.(\d+)\.weight"))
            return Architecture("ms-lapsrn", 0, (("depth", depth), ("channels", channels)))
        levels = len(indices(state, r"levels\.(\d+)\.residual\.weight"))
        depth = len(indices(state, r"levels\.0\.features\.(\d+)\.weight")) - 1  # and upconv
        return Architecture("lapsrn", 2**levels, (("depth", depth), ("channels", channels)))
    return early_cnn_architecture(state)


def _recursions(variables: Mapping[str, Any]) -> int:
    """MS-LapSRN's R: its recursions share their weights, so only the DagNN's layers
    (`x2SR_level1_R8_conv1`, ...) tell how many there are."""
    names = _dagnn_layers(variables["net"])
    return max((int(m[1]) for n in names if (m := re.search(r"_R(\d+)_conv1$", n))), default=0)


def _options(variables: Mapping[str, Any], found: Architecture, scale: int) -> dict[str, Any]:
    """The sizes a file holds and the authors' conventions: what its model is built with."""
    sizes = dict(found.sizes)
    if found.family == "ms-lapsrn":
        sizes["recursions"] = _recursions(variables)
    if "kernels" in sizes:
        sizes["kernels"] = list(sizes["kernels"])  # saved as JSON with the weights
    if found.family == "fsrcnn" and scale == 3:
        sizes["deconv_crop"] = 3  # their x3 deconvolution is one HR pixel off (fsrcnn.py)
    return {**sizes, **CONVENTIONS[found.family]}


MATLAB_FAMILY = Family(
    "SRCNN, FSRCNN, VDSR, LapSRN or MS-LapSRN", SPECS, LAYOUTS, RELEASED, _read,
    upsampler=r"levels\.\d+\.residual\.weight", tensors=mat_tensors, open=read_mat,
    suffix=".mat", options=_options,
)
