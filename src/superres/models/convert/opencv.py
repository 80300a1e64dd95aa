"""The TensorFlow frozen graphs of OpenCV's dnn_superres model zoo (`FSRCNN_x3.pb`,
`ESPCN_x4.pb`, `LapSRN_x8.pb`, `EDSR_x4.pb`, ...): reading them without TensorFlow, and what
each computes.

A frozen graph is a serialised `GraphDef` protocol buffer; `read_frozen_graph` decodes the
few messages it needs (GraphDef, NodeDef, AttrValue, TensorProto, TensorShapeProto) from the
wire format, with their field numbers from TensorFlow's `.proto` files. Weights are `Const`
nodes named after the training code's variables (8-bit ones, as in the quantised EDSR graphs,
behind a `Dequantize` node); filters are TensorFlow's height x width x in x out. The layouts
come from the training repositories OpenCV names (their code, read at the commits cited):

- FSRCNN, Saafke/FSRCNN_Tensorflow `fsrcnn.py`: filters `f1`..`f{m+4}`, biases `b*`, per-channel
  PReLU slopes `alpha1`..`alpha{m+3}`; the last filter is a 9x9 `conv2d_transpose` with
  'SAME' padding, which aligns its output (9 - scale) // 2 rows from centred superres's (the
  `deconv_crop` option). Y channel in [0, 1], as superres.
- ESPCN, fannymonori/TF-ESPCN `ESPCN.py`: `f1`..`f3`, `b1`..`b3`, ReLU (not the paper's tanh:
  the activation is read from the graph's ops), depth_to_space. Y in [0, 1].
- EDSR, Saafke/EDSR_Tensorflow `edsr.py`: `resFilter_one` (head), `resFilter{2i}`/`{2i+1}` (block
  i, residuals scaled by 0.1), `resFilter_two` (global skip), `resFilter_three` (one sub-pixel
  convolution to 3 x scale^2 channels, then depth_to_space, even at x4), biases `BiasOne`,
  `resBias*`, ... On BGR in [0, 255] minus OpenCV's BGR mean of DIV2K (its dnn_superres.cpp
  subtracts and adds it): the head's input and the output channels are reversed to RGB, the
  mean goes into superres's mean shifts, and the single x scale shuffle is written into
  superres's sub-pixel stages (x4: two x2 stages that move the same pixels) and an identity
  output convolution, so the network computes exactly the graph.
- LapSRN, fannymonori/TF-LapSRN `LapSRN.py` at b2a65e0 (OpenCV's LapSRN_x2/x4/x8.pb): not the
  paper's network (`superres.models.lapsrn.tf_lapsrn`); filters `0_{n}f`, unnamed `Variable_*`
  (9 per level, in creation order), biases `{i}_{n}bias` (the first one a single value), and
  `reconstruction_2_deconv_f_*` (per level: the features', then the image's 4x4 convolution
  before depth_to_space).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from superres.models.convert.edsr import EDSR_FAMILY
from superres.models.convert.mechanism import (
    Architecture,
    Family,
    Layout,
    ReleasedWeights,
    Rule,
    Tensors,
    fsrcnn_rule,
    indices,
)
from superres.models.convert.reimpl import read_small
from superres.models.edsr import EDSR, EDSR_BASELINE
from superres.models.espcn import ESPCN
from superres.models.fsrcnn import FSRCNN, FSRCNN_S
from superres.models.lapsrn import LAPSRN
from superres.models.registry import ModelSpec

SPECS: dict[str, ModelSpec] = {
    spec.name: spec for spec in (FSRCNN, FSRCNN_S, ESPCN, EDSR, EDSR_BASELINE, LAPSRN)
}
# The BGR mean of DIV2K that OpenCV's dnn_superres subtracts before its EDSR graphs (0-255).
OPENCV_BGR_MEAN = (103.1545782, 111.561547, 114.35629928)
EDSR_RES_SCALE = 0.1  # Saafke/EDSR_Tensorflow scales every residual by 0.1

# ---------------------------------------------------------------- the GraphDef wire format

_DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 6: np.int8, 9: np.int64,
           11: np.int8, 12: np.uint8, 19: np.float16}  # DataType enum: qint8 11, quint8 12
_QUANTISED_LOWEST = {11: -128, 12: 0}


def _varint(data: memoryview | bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("a truncated varint")
        byte = data[pos]
        result |= (byte & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if byte < 0x80:
            return result, pos


def _fields(data: memoryview | bytes) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value) of a protocol buffer message: an int for varints,
    bytes for length-delimited fields, raw bytes for fixed 32/64-bit ones."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            size, pos = _varint(data, pos)
            value, pos = data[pos: pos + size], pos + size
            if len(value) != size:
                raise ValueError("a truncated field")
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            value, pos = data[pos: pos + width], pos + width
        else:
            raise ValueError(f"wire type {wire} (groups) is not in TensorFlow's messages")
        yield number, wire, value


def _signed(value: int) -> int:
    """A varint-encoded int64 (negative sizes, such as -1, take ten bytes)."""
    return value - (1 << 64) if value >= 1 << 63 else value


def _ints(wire: int, value: Any) -> list[int]:
    """A repeated int field, packed (one length-delimited run) or not."""
    if wire == 0:
        return [_signed(value)]
    out, pos = [], 0
    while pos < len(value):
        item, pos = _varint(value, pos)
        out.append(_signed(item))
    return out


def _shape(data: memoryview) -> list[int]:
    """TensorShapeProto: dim = 2 (Dim: size = 1)."""
    return [next((_signed(v) for n, _, v in _fields(dim) if n == 1), 0)
            for number, _, dim in _fields(data) if number == 2]


def _tensor(data: memoryview) -> np.ndarray:
    """TensorProto: dtype = 1, tensor_shape = 2, tensor_content = 4 (raw little-endian),
    float_val = 5, int_val = 7, int64_val = 10; fewer values than elements repeat the last."""
    dtype, shape, content, values = 0, [], None, []
    for number, wire, value in _fields(data):
        if number == 1:
            dtype = value
        elif number == 2:
            shape = _shape(value)
        elif number == 4:
            content = value
        elif number == 5:
            values += list(struct.unpack(f"<{len(value) // 4}f", value))
        elif number in (7, 10):
            values += _ints(wire, value)
    size = int(np.prod(shape))
    if content is not None:
        array = np.frombuffer(content, dtype=np.dtype(_DTYPES[dtype]).newbyteorder("<"))
    else:
        array = np.array(values[:size] + values[-1:] * (size - len(values)), _DTYPES[dtype])
    if array.size != size:
        raise ValueError(f"a Const of shape {shape} holds {array.size} values")
    return array.reshape(shape)


@dataclass(frozen=True)
class Node:
    """A NodeDef: name = 1, op = 2, input = 3, attr = 5 (map entries: key = 1, value = 2)."""

    name: str
    op: str
    inputs: tuple[str, ...]
    attrs: dict[str, memoryview]  # AttrValue messages, decoded where needed

    @classmethod
    def parse(cls, data: memoryview) -> Node:
        name, op, inputs, attrs = "", "", [], {}
        for number, _, value in _fields(data):
            if number == 1:
                name = bytes(value).decode()
            elif number == 2:
                op = bytes(value).decode()
            elif number == 3:
                inputs.append(bytes(value).decode().lstrip("^").split(":")[0])
            elif number == 5:
                entry = {n: v for n, _, v in _fields(value)}
                attrs[bytes(entry.get(1, b"")).decode()] = entry.get(2, b"")
        return cls(name, op, tuple(inputs), attrs)

    def attr(self, key: str, field: int) -> list[Any]:
        """The values of one AttrValue field (s = 2, i = 3, tensor = 8, list = 1) of `key`;
        a list's integers for field 1 (ListValue i = 3)."""
        out: list[Any] = []
        for number, _, value in _fields(self.attrs.get(key, b"")):
            if number == field == 1:
                out += [i for n, w, v in _fields(value) if n == 3 for i in _ints(w, v)]
            elif number == field:
                out.append(value)
        return out


class FrozenGraph(dict[str, Tensor]):
    """A frozen graph's weights, its Const nodes (8-bit ones dequantised) by node name as
    float32 tensors in TensorFlow's layout, and what its ops say: their names (`ops`, to tell
    ESPCN's activation) and the stride of its transposed convolution (`scale`: FSRCNN's
    tensors do not hold it)."""

    def __init__(self, tensors: Mapping[str, Tensor], nodes: list[Node]) -> None:
        super().__init__(tensors)
        self.ops = frozenset(node.op for node in nodes)
        strides = [node.attr("strides", 1) for node in nodes if node.op == "Conv2DBackpropInput"]
        self.scale = strides[0][1] if strides and len(strides[0]) == 4 else 0


def _dequantise(node: Node, consts: Mapping[str, tuple[int, np.ndarray]]) -> np.ndarray:
    """Dequantize(quantised, min, max) of Const inputs, as TensorFlow's MIN_COMBINED and
    MIN_FIRST modes compute it for 8-bit types: min + (q - lowest) (max - min) / 255."""
    mode = b"".join(node.attr("mode", 2)) or b"MIN_COMBINED"
    if mode not in (b"MIN_COMBINED", b"MIN_FIRST") or len(node.inputs) != 3:
        raise ValueError(f"Dequantize node {node.name} in mode {mode.decode()} is not supported")
    (dtype, quantised), (_, low), (_, high) = (consts[name] for name in node.inputs)
    lowest = _QUANTISED_LOWEST.get(dtype)
    if lowest is None:
        raise ValueError(f"Dequantize node {node.name} reads DataType {dtype}, not 8 bits")
    step = (float(high.ravel()[0]) - float(low.ravel()[0])) / 255
    return (float(low.ravel()[0]) + (quantised.astype(np.float64) - lowest) * step).astype(
        np.float32)


def read_frozen_graph(path: Path) -> FrozenGraph:
    """The weights and ops of a TensorFlow frozen graph (.pb), or a one-line ValueError saying
    what the file is instead. Nothing in the graph runs: it is only decoded."""
    data = memoryview(Path(path).read_bytes())  # slices of it are not copies
    try:
        nodes = [Node.parse(value) for number, _, value in _fields(data) if number == 1]
        consts: dict[str, tuple[int, np.ndarray]] = {}
        for node in nodes:
            if node.op == "Const":
                (value,) = node.attr("value", 8) or [b""]
                dtype = next((v for n, _, v in _fields(value) if n == 1), 0)
                if dtype in _DTYPES:  # strings and the like hold no weights
                    consts[node.name] = (dtype, _tensor(value))
        tensors = {name: torch.from_numpy(np.array(array, dtype=np.float32))
                   for name, (dtype, array) in consts.items() if dtype not in _QUANTISED_LOWEST}
        for node in nodes:
            if node.op == "Dequantize" and all(name in consts for name in node.inputs):
                tensors[node.name] = torch.from_numpy(_dequantise(node, consts))
    except (ValueError, UnicodeDecodeError, KeyError, struct.error) as err:
        raise ValueError(f"{Path(path).name} is no TensorFlow frozen graph ({err})") from None
    if not nodes or not any(node.op for node in nodes):
        raise ValueError(f"{Path(path).name} is no TensorFlow frozen graph (no nodes)")
    return FrozenGraph(tensors, nodes)


# ---------------------------------------------------------------- the graphs' tensors


def _torch_layout(tensor: Tensor) -> Tensor:
    """A TensorFlow filter as PyTorch's weight: conv2d's (h, w, in, out) -> (out, in, h, w);
    conv2d_transpose's (h, w, out, in) -> ConvTranspose2d's (in, out, h, w) alike."""
    return tensor.permute(3, 2, 0, 1).contiguous() if tensor.ndim == 4 else tensor


def _shuffle_stages(weight: Tensor, bias: Tensor, scale: int, channels: int) -> Tensors:
    """EDSR's one sub-pixel convolution to 3 x scale^2 BGR channels and TensorFlow's
    depth_to_space (channel (i scale + j) 3 + c goes to row offset i, column j, colour c),
    written as superres's sub-pixel stages (conv `channels` -> `channels` f^2, PyTorch's pixel
    shuffle: channel c' f^2 + a f + b) and its output convolution, all in RGB.

    x2, x3: one stage; its channels c = 0, 1, 2 carry RGB. x4 (two x2 stages): stage 1 puts
    row offset i = 2a + a2, column j = 2b + b2 of colour c in channel c' = 4c + 2a2 + b2 at
    offset (a, b); stage 2 copies channel c' to its output channel 4c + 2a2 + b2, which its
    shuffle moves by (a2, b2). The output convolution keeps channels 0-2. Unused channels
    are zero, so any width of 12 or more channels computes the graph exactly."""
    def tf_channel(i: int, j: int, colour: int) -> int:
        return (i * scale + j) * 3 + (2 - colour)  # BGR -> RGB

    factors = [scale] if scale in (2, 3) else [2, 2]
    stages = [torch.zeros(channels * f * f, channels, 3, 3) for f in factors]
    biases = [torch.zeros(channels * f * f) for f in factors]
    if scale in (2, 3):
        for colour in range(3):
            for i in range(scale):
                for j in range(scale):
                    out = colour * scale * scale + i * scale + j
                    stages[0][out] = weight[tf_channel(i, j, colour)]
                    biases[0][out] = bias[tf_channel(i, j, colour)]
    else:
        for colour in range(3):
            for a2 in range(2):
                for b2 in range(2):
                    middle = 4 * colour + 2 * a2 + b2
                    stages[1][middle, middle, 1, 1] = 1.0
                    for a in range(2):
                        for b in range(2):
                            source = tf_channel(2 * a + a2, 2 * b + b2, colour)
                            stages[0][middle * 4 + 2 * a + b] = weight[source]
                            biases[0][middle * 4 + 2 * a + b] = bias[source]
    tensors = {f"upsampler.0.{k}.0.weight": w for k, w in enumerate(stages)}
    tensors.update({f"upsampler.0.{k}.0.bias": b for k, b in enumerate(biases)})
    output = torch.zeros(3, channels, 3, 3)
    for colour in range(3):
        output[colour, colour, 1, 1] = 1.0
    return {**tensors, "upsampler.1.weight": output, "upsampler.1.bias": torch.zeros(3)}


def _edsr_tensors(graph: Mapping[str, Tensor]) -> Tensors:
    """EDSR's graph in PyTorch's layout, its head reading RGB, and what superres builds
    around it under superres's names: the mean shifts and the upsampler (`_shuffle_stages`)."""
    tensors = {name: _torch_layout(value) for name, value in graph.items()
               if name not in ("resFilter_three", "BiasThree")}
    tensors["resFilter_one"] = tensors["resFilter_one"][:, [2, 1, 0]]
    upsampler = _torch_layout(graph["resFilter_three"])
    channels = upsampler.shape[1]
    scale = round((upsampler.shape[0] / 3) ** 0.5)
    if scale not in (2, 3, 4) or 3 * scale * scale != upsampler.shape[0] or channels < 12:
        raise ValueError(f"resFilter_three {tuple(graph['resFilter_three'].shape)} is no x2, x3 "
                         "or x4 sub-pixel convolution to BGR from 12 or more channels")
    tensors.update(_shuffle_stages(upsampler, graph["BiasThree"], scale, channels))
    mean = torch.tensor(OPENCV_BGR_MEAN[::-1])  # RGB, 0-255
    eye = torch.eye(3).view(3, 3, 1, 1)
    tensors.update({"sub_mean.weight": eye, "sub_mean.bias": -mean,
                    "add_mean.weight": eye.clone(), "add_mean.bias": mean.clone()})
    return tensors


def _lapsrn_tensors(graph: Mapping[str, Tensor]) -> Tensors:
    """TF-LapSRN's graph in PyTorch's layout; each level's first bias, one value that
    TensorFlow broadcasts, repeated for every channel."""
    tensors = {name: _torch_layout(value) for name, value in graph.items()}
    for level in indices(graph, r"0_(\d+)f"):
        bias, channels = f"0_{level}bias", tensors[f"0_{level}f"].shape[0]
        if bias in tensors and tensors[bias].numel() == 1:
            tensors[bias] = tensors[bias].reshape(1).expand(channels).clone()
    return tensors


# The Const nodes that hold the layouts' weights (others are shapes and scalars of the ops).
_WEIGHTS = re.compile(r"resFilter(_one|_two|_three|\d+)|resBias\d+|Bias(One|Two|Three)"
                      r"|0_\d+f|\d+_\d+bias|Variable(_\d+)?|reconstruction_2_deconv_f(_\d+)?"
                      r"|[fb]\d+|alpha\d+")


def _graph_tensors(graph: Mapping[str, Any]) -> Tensors:
    """A frozen graph's weights in PyTorch's layouts, under their TensorFlow names (and
    superres's for what EDSR's needs built)."""
    if not isinstance(graph, FrozenGraph):
        raise ValueError("not a TensorFlow frozen graph (.pb)")
    weights = {name: value for name, value in graph.items() if _WEIGHTS.fullmatch(name)}
    if "resFilter_one" in weights:
        return _edsr_tensors(weights)
    if "0_0f" in weights:
        return _lapsrn_tensors(weights)
    return {name: _torch_layout(value) for name, value in weights.items()}


# ---------------------------------------------------------------- layouts


def _fsrcnn_rules(keys: list[str]) -> list[Rule]:
    last = max(indices(keys, r"f(\d+)"), default=0)  # f{m+4}: the deconvolution
    return [fsrcnn_rule(r"(f|b|alpha)(\d+)", "f", "alpha", last)]


def _espcn_rules(keys: list[str]) -> list[Rule]:
    return [(r"([fb])([12])", lambda m: f"body.{2 * int(m[2]) - 2}.{_PART[m[1]]}"),
            (r"([fb])3", lambda m: f"upsampler.0.{_PART[m[1]]}")]


_PART = {"f": "weight", "b": "bias"}


def _edsr_rules(keys: list[str]) -> list[Rule]:
    blocks = len(indices(keys, r"resFilter(\d+)")) // 2
    return [
        (r"resFilter_one", "head.weight"),
        (r"BiasOne", "head.bias"),
        (r"res(Filter|Bias)(\d+)",
         lambda m: f"body.body.{int(m[2]) // 2}.body.{2 * (int(m[2]) % 2)}."
                   f"{'weight' if m[1] == 'Filter' else 'bias'}"),
        (r"resFilter_two", f"body.body.{blocks}.weight"),
        (r"BiasTwo", f"body.body.{blocks}.bias"),
        (r"((?:sub|add)_mean|upsampler)\.(.+)", r"\1.\2"),  # built by _edsr_tensors
    ]


def _lapsrn_rules(keys: list[str]) -> list[Rule]:
    depth = len(indices(keys, r"(\d+)_0bias"))  # convolutions per level, each with a bias

    def numbered(m: re.Match[str]) -> int:
        return int(m[1]) if m[1] else 0

    def variable(m: re.Match[str]) -> str:  # the unnamed filters, depth - 1 per level
        level, layer = divmod(numbered(m), depth - 1)
        return f"levels.{level}.features.{2 * layer + 2}.weight"

    def reconstruction(m: re.Match[str]) -> str:  # per level: the features', the image's
        level, image = divmod(numbered(m), 2)
        return f"levels.{level}.image.1.weight" if image else (
            f"levels.{level}.features.{2 * depth}.1.weight")

    return [
        (r"0_(\d+)f", r"levels.\1.features.0.weight"),
        (r"0_(\d+)bias", r"levels.\1.features.0.bias"),
        (r"Variable(?:_(\d+))?", variable),
        (r"(\d+)_(\d+)bias", lambda m: f"levels.{m[2]}.features.{2 * int(m[1])}.bias"),
        (r"reconstruction_2_deconv_f(?:_(\d+))?", reconstruction),
    ]


LAYOUTS = (
    Layout("EDSR_Tensorflow", "resFilter_one", _edsr_rules),
    Layout("TF-LapSRN", "0_0f", _lapsrn_rules),
    Layout("FSRCNN_Tensorflow", "alpha1", _fsrcnn_rules),
    Layout("TF-ESPCN", "f3", _espcn_rules),
)


# ---------------------------------------------------------------- architectures, options


def _read(state: Mapping[str, Tensor], name: Callable[[str], str]) -> Architecture:
    """EDSR (a head convolution) or one of the small Y-channel networks."""
    return EDSR_FAMILY.read(state, name) if "head.weight" in state else read_small(state, name)


def _options(graph: Mapping[str, Any], found: Architecture, scale: int) -> dict[str, Any]:
    """What the graph computes beyond superres's models: its sizes, FSRCNN's deconvolution
    alignment, ESPCN's activation, EDSR's residual scaling, TF-LapSRN's design."""
    sizes = dict(found.sizes)
    if found.family == "fsrcnn":  # TensorFlow's 'SAME' for a 9x9 kernel at stride `scale`
        return {**sizes, "deconv_crop": (9 - scale) // 2}
    if found.family == "espcn":
        return {**sizes, "activation": "relu" if "Relu" in getattr(graph, "ops", ()) else "tanh"}
    if found.family == "edsr":
        return {**sizes, "res_scale": EDSR_RES_SCALE}
    return sizes  # TF-LapSRN: its design is one of its sizes


class GraphFamily(Family):
    """A family of frozen graphs, which know a scale their tensors may not hold (FSRCNN's
    transposed convolution stride, `FrozenGraph.scale`) and refuse another."""

    def convert(
        self, state: Mapping[str, Any], model_name: str, scale: int
    ) -> tuple[Tensors, dict[str, Any]]:
        graph_scale = getattr(state, "scale", 0)
        if graph_scale and graph_scale != scale:
            raise ValueError(f"this graph upsamples x{graph_scale} (the strides of its "
                             f"transposed convolution), but {model_name} x{scale} was asked for")
        return super().convert(state, model_name, scale)


_ZOO = "https://github.com/opencv/opencv_contrib/raw/{}/modules/dnn_superres/models/{}"
_EDSR_TF = "https://github.com/Saafke/EDSR_Tensorflow/raw/master/models/"
_TRAINED = "trained by the OpenCV GSoC 2019 project ({}); no digest published"
RELEASED: tuple[ReleasedWeights, ...] = (
    *(ReleasedWeights(model, scale, f"{name}_x{scale}.pb",
                      _ZOO.format(commit, f"{name}_x{scale}.pb"), layout,
                      note=_TRAINED.format(repo) + "; the copy in opencv_contrib's tests")
      for model, name, layout, repo, commit, scales in (
          ("fsrcnn", "FSRCNN", "FSRCNN_Tensorflow", "Saafke/FSRCNN_Tensorflow",
           "98517e4f6a985d7d4de629a69c342c82f53483ff", (3, 4)),
          ("espcn", "ESPCN", "TF-ESPCN", "fannymonori/TF-ESPCN",
           "9ae3881035e0a2a0e102840de10aad1cc2156832", (3, 4)),
          ("lapsrn", "LapSRN", "TF-LapSRN", "fannymonori/TF-LapSRN",
           "9ae3881035e0a2a0e102840de10aad1cc2156832", (2, 4, 8)),
      )
      for scale in scales),
    *(ReleasedWeights("edsr", scale, f"EDSR_x{scale}.pb", f"{_EDSR_TF}EDSR_x{scale}.pb",
                      "EDSR_Tensorflow", note=_TRAINED.format("Saafke/EDSR_Tensorflow")
                      + "; 8-bit quantised; at the repository's master (no pinned commit)")
      for scale in (2, 3, 4)),
)

OPENCV_FAMILY = GraphFamily(
    "OpenCV dnn_superres FSRCNN, ESPCN, EDSR or LapSRN graph", SPECS, LAYOUTS, RELEASED, _read,
    upsampler=r"upsampler\.(0\.)*weight|upsampler\.0\.\d+\.0\.weight", tensors=_graph_tensors,
    open=read_frozen_graph, suffix=".pb", options=_options,
)
