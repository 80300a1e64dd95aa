"""OpenCV's dnn_superres TensorFlow graphs convert without TensorFlow and compute what the
graphs compute. The graphs here are written with the `protobuf` package, from a schema of
TensorFlow's messages declared below (an encoder independent of superres's decoder), in the
node layouts of the training repositories; the reference forward passes implement
TensorFlow's operations (NHWC, 'SAME' padding, conv2d_transpose, depth_to_space) directly on
the graphs' own tensors."""

from pathlib import Path

import numpy as np
import pytest
import torch

import superres
from superres.models.convert import convert_file
from superres.models.convert.opencv import OPENCV_BGR_MEAN, read_frozen_graph

descriptor_pb2 = pytest.importorskip("google.protobuf.descriptor_pb2")
message_factory = pytest.importorskip("google.protobuf.message_factory")

pytestmark = pytest.mark.usefixtures("one_thread")

FLOAT, QUINT8 = 1, 12  # TensorFlow's DataType enum


def tensorflow_messages() -> dict:
    """GraphDef, NodeDef, AttrValue, TensorProto and TensorShapeProto with TensorFlow's field
    numbers (tensorflow/core/framework/*.proto), the fields the graphs use."""
    field = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(name="tf_graph_test.proto", package="tft",
                                               syntax="proto3")

    def message(parent, name, *fields):
        m = (parent.message_type if parent is proto else parent.nested_type).add(name=name)
        for fname, number, ftype, repeated, type_name in fields:
            label = field.LABEL_REPEATED if repeated else field.LABEL_OPTIONAL
            m.field.add(name=fname, number=number, type=ftype, label=label,
                        **({"type_name": type_name} if type_name else {}))
        return m

    shape = message(proto, "TensorShapeProto", ("dim", 2, field.TYPE_MESSAGE, True,
                                                ".tft.TensorShapeProto.Dim"))
    message(shape, "Dim", ("size", 1, field.TYPE_INT64, False, None))
    message(proto, "TensorProto",
            ("dtype", 1, field.TYPE_INT32, False, None),
            ("tensor_shape", 2, field.TYPE_MESSAGE, False, ".tft.TensorShapeProto"),
            ("tensor_content", 4, field.TYPE_BYTES, False, None),
            ("float_val", 5, field.TYPE_FLOAT, True, None))
    attr = message(proto, "AttrValue",
                   ("list", 1, field.TYPE_MESSAGE, False, ".tft.AttrValue.ListValue"),
                   ("s", 2, field.TYPE_BYTES, False, None),
                   ("i", 3, field.TYPE_INT64, False, None),
                   ("tensor", 8, field.TYPE_MESSAGE, False, ".tft.TensorProto"))
    message(attr, "ListValue", ("i", 3, field.TYPE_INT64, True, None))
    node = message(proto, "NodeDef",
                   ("name", 1, field.TYPE_STRING, False, None),
                   ("op", 2, field.TYPE_STRING, False, None),
                   ("input", 3, field.TYPE_STRING, True, None),
                   ("attr", 5, field.TYPE_MESSAGE, True, ".tft.NodeDef.AttrEntry"))
    entry = message(node, "AttrEntry", ("key", 1, field.TYPE_STRING, False, None),
                    ("value", 2, field.TYPE_MESSAGE, False, ".tft.AttrValue"))
    entry.options.map_entry = True
    message(proto, "GraphDef", ("node", 1, field.TYPE_MESSAGE, True, ".tft.NodeDef"))
    return message_factory.GetMessages([proto])


MESSAGES = tensorflow_messages()


class Graph:
    """A frozen graph being written: Const nodes (float, or 8-bit behind Dequantize as TF's
    quantize_weights transform writes them) and the ops that read them."""

    def __init__(self) -> None:
        self.graph = MESSAGES["tft.GraphDef"]()
        self.weights: dict[str, np.ndarray] = {}  # what the graph computes with, float
        self.op("IteratorGetNext", "Placeholder")

    def op(self, name: str, op: str, *inputs: str, strides: int | None = None) -> None:
        node = self.graph.node.add(name=name, op=op)
        node.input.extend(inputs)
        if strides:
            node.attr["strides"].list.i.extend([1, strides, strides, 1])

    def const(self, name: str, array: np.ndarray, as_values: bool = False) -> None:
        node = self.graph.node.add(name=name, op="Const")
        tensor = node.attr["value"].tensor
        tensor.dtype = QUINT8 if array.dtype == np.uint8 else FLOAT
        for size in array.shape:
            tensor.tensor_shape.dim.add(size=size)
        if as_values:  # TensorFlow writes small tensors as float_val
            tensor.float_val.extend(array.ravel().tolist())
        else:
            tensor.tensor_content = np.ascontiguousarray(array).astype(array.dtype.newbyteorder(
                "<")).tobytes()
        if array.dtype != np.uint8:
            self.weights[name] = array

    def weight(self, name: str, shape: tuple[int, ...], rng: np.random.Generator,
               quantised: bool = False, std: float | None = None) -> np.ndarray:
        fan = int(np.prod(shape[:-1])) if len(shape) == 4 else 1
        array = (rng.standard_normal(shape) * (std or (1 / np.sqrt(fan) if len(shape) == 4
                                                       else 0.1))).astype(np.float32)
        if not quantised:
            self.const(name, array, as_values=array.ndim == 1)
            return array
        low, high = float(array.min()), float(array.max())
        levels = np.round((array - low) / (high - low) * 255).astype(np.uint8)
        self.const(f"{name}_quantized_const", levels)
        self.const(f"{name}_quantized_min", np.array(low, np.float32))
        self.const(f"{name}_quantized_max", np.array(high, np.float32))
        self.op(name, "Dequantize", f"{name}_quantized_const", f"{name}_quantized_min",
                f"{name}_quantized_max")
        node = self.graph.node[-1]
        node.attr["mode"].s = b"MIN_FIRST"
        self.weights[name] = (low + levels.astype(np.float64) * (high - low) / 255).astype(
            np.float32)
        return self.weights[name]

    def write(self, path: Path) -> Path:
        path.write_bytes(self.graph.SerializeToString())
        return path


# ---------------------------------------------------------------- TensorFlow's operations


def t(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(array, dtype=np.float32))


def conv_same(x: torch.Tensor, w: np.ndarray, b: np.ndarray | None = None) -> torch.Tensor:
    """tf.nn.conv2d(x, w, stride 1, 'SAME'), NHWC x and HWIO w: a correlation after padding
    (k - 1) // 2 rows before and the rest after."""
    kh, kw = w.shape[:2]
    top, left = (kh - 1) // 2, (kw - 1) // 2
    padded = torch.nn.functional.pad(x, (0, 0, left, kw - 1 - left, top, kh - 1 - top))
    height, width = x.shape[1:3]
    out = sum(torch.einsum("nhwc,co->nhwo", padded[:, i:i + height, j:j + width], t(w[i, j]))
              for i in range(kh) for j in range(kw))
    return out + (t(b) if b is not None else 0)


def conv_transpose_same(x: torch.Tensor, w: np.ndarray, stride: int) -> torch.Tensor:
    """tf.nn.conv2d_transpose(x, w (h, w, out, in), output stride x the input, 'SAME'): the
    full transposed convolution cropped from TensorFlow's padding before, (k - stride) // 2."""
    k = w.shape[0]
    n, height, width, _ = x.shape
    full = torch.zeros(n, (height - 1) * stride + k, (width - 1) * stride + k, w.shape[2])
    for i in range(k):
        for j in range(k):
            full[:, i:i + (height - 1) * stride + 1:stride, j:j + (width - 1) * stride + 1:stride] \
                += torch.einsum("nhwc,oc->nhwo", x, t(w[i, j]))
    before = (k - stride) // 2
    return full[:, before:before + stride * height, before:before + stride * width]


def depth_to_space(x: torch.Tensor, block: int) -> torch.Tensor:
    """tf.nn.depth_to_space, NHWC: channel (i block + j) C + c goes to offset (i, j)."""
    n, height, width, depth = x.shape
    channels = depth // block**2
    x = x.reshape(n, height, width, block, block, channels).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(n, height * block, width * block, channels)


def prelu(x: torch.Tensor, alpha: np.ndarray) -> torch.Tensor:  # FSRCNN_Tensorflow's prelu
    return torch.relu(x) + t(alpha) * (x - x.abs()) * 0.5


def leaky(x: torch.Tensor) -> torch.Tensor:  # TF-LapSRN's activation
    return torch.relu(x) - 0.2 * torch.relu(-x)


def nhwc(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 2, 3, 1)


def ours(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return nhwc(model(x))


# ---------------------------------------------------------------- the four graphs


def fsrcnn_graph(scale: int, d: int, s: int, m: int, seed: int = 0) -> Graph:
    """Saafke/FSRCNN_Tensorflow's model(): f1..f{m+4}, b1..b{m+4}, alpha1..alpha{m+3}."""
    rng, graph = np.random.default_rng(seed), Graph()
    shapes = [(5, 5, 1, d), (1, 1, d, s), *[(3, 3, s, s)] * m, (1, 1, s, d), (9, 9, 1, d)]
    for k, shape in enumerate(shapes, start=1):
        graph.weight(f"f{k}", shape, rng)
        graph.weight(f"b{k}", (shape[2] if k == len(shapes) else shape[3],), rng)
        if k < len(shapes):
            graph.weight(f"alpha{k}", (shape[3],), rng, std=0.2)
            graph.op(f"conv{k}", "Conv2D", "IteratorGetNext", f"f{k}")
            graph.op(f"Relu_{k}", "Relu", f"conv{k}")
    graph.op("deconv", "Conv2DBackpropInput", "deconv/output_shape", f"f{len(shapes)}",
             f"conv{len(shapes) - 1}", strides=scale)
    graph.const("deconv/output_shape", np.array([1, 0, 0, 1], np.float32))
    return graph


def fsrcnn_reference(graph: Graph, x: torch.Tensor, scale: int, m: int) -> torch.Tensor:
    w = graph.weights
    for k in range(1, m + 4):
        x = prelu(conv_same(x, w[f"f{k}"], w[f"b{k}"]), w[f"alpha{k}"])
    return conv_transpose_same(x, w[f"f{m + 4}"], scale) + t(w[f"b{m + 4}"])


def espcn_graph(scale: int, seed: int = 0) -> Graph:
    """fannymonori/TF-ESPCN's ESPCN_model(): f1..f3, b1..b3, ReLU, depth_to_space."""
    rng, graph = np.random.default_rng(seed), Graph()
    for k, shape in enumerate([(5, 5, 1, 64), (3, 3, 64, 32), (3, 3, 32, scale * scale)], 1):
        graph.weight(f"f{k}", shape, rng)
        graph.weight(f"b{k}", (shape[3],), rng)
        graph.op(f"conv{k}", "Conv2D", "IteratorGetNext", f"f{k}")
    graph.op("Relu", "Relu", "conv1")
    graph.op("Relu_1", "Relu", "conv2")
    graph.op("DepthToSpace", "DepthToSpace", "conv3")
    graph.op("NCHW_output", "Transpose", "DepthToSpace", "NCHW_output/perm")
    graph.const("NCHW_output/perm", np.array([0, 3, 1, 2], np.float32))
    return graph


def espcn_reference(graph: Graph, x: torch.Tensor, scale: int) -> torch.Tensor:
    w = graph.weights
    x = torch.relu(conv_same(x, w["f1"], w["b1"]))
    x = torch.relu(conv_same(x, w["f2"], w["b2"]))
    return depth_to_space(conv_same(x, w["f3"], w["b3"]), scale)


def edsr_graph(scale: int, blocks: int, channels: int, seed: int = 0) -> Graph:
    """Saafke/EDSR_Tensorflow's model(), 8-bit quantised as OpenCV's EDSR_x*.pb."""
    rng, graph = np.random.default_rng(seed), Graph()
    graph.weight("resFilter_one", (3, 3, 3, channels), rng, quantised=True)
    graph.weight("BiasOne", (channels,), rng)
    for k in range(2 * blocks):
        graph.weight(f"resFilter{k}", (3, 3, channels, channels), rng, quantised=True)
        graph.weight(f"resBias{k}", (channels,), rng)
    graph.weight("resFilter_two", (3, 3, channels, channels), rng, quantised=True)
    graph.weight("BiasTwo", (channels,), rng)
    graph.weight("resFilter_three", (3, 3, channels, 3 * scale * scale), rng, quantised=True)
    graph.weight("BiasThree", (3 * scale * scale,), rng)
    graph.const("mul/y", np.array(0.1, np.float32), as_values=True)  # the residual scaling
    graph.op("Conv2D", "Conv2D", "IteratorGetNext", "resFilter_one")
    graph.op("NHWC_output", "DepthToSpace", "Conv2D")
    return graph


def edsr_reference(graph: Graph, x: torch.Tensor, scale: int, blocks: int) -> torch.Tensor:
    w = graph.weights
    x = head = conv_same(x, w["resFilter_one"], w["BiasOne"])
    for b in range(blocks):
        y = torch.relu(conv_same(x, w[f"resFilter{2 * b}"], w[f"resBias{2 * b}"]))
        x = x + 0.1 * conv_same(y, w[f"resFilter{2 * b + 1}"], w[f"resBias{2 * b + 1}"])
    x = conv_same(x, w["resFilter_two"], w["BiasTwo"]) + head
    return depth_to_space(conv_same(x, w["resFilter_three"], w["BiasThree"]), scale)


def lapsrn_graph(scale: int, seed: int = 0) -> Graph:
    """fannymonori/TF-LapSRN's LapSRN_model() at b2a65e0, in its variables' creation order."""
    rng, graph = np.random.default_rng(seed), Graph()
    unnamed, reconstruction = 0, 0
    for level in range(int(np.log2(scale))):
        graph.weight(f"0_{level}f", (3, 3, 1, 64), rng)
        graph.weight(f"0_{level}bias", (1,), rng)
        for i in range(1, 10):
            graph.weight("Variable" + (f"_{unnamed}" if unnamed else ""), (3, 3, 64, 64), rng)
            graph.weight(f"{i}_{level}bias", (64,), rng)
            unnamed += 1
        for inputs in (64, 1):  # the features' upsampler, then the image's
            suffix = f"_{reconstruction}" if reconstruction else ""
            graph.weight(f"reconstruction_2_deconv_f{suffix}", (4, 4, inputs, 4), rng)
            reconstruction += 1
    graph.op("Conv2D", "Conv2D", "IteratorGetNext", "0_0f")
    return graph


def lapsrn_reference(graph: Graph, x: torch.Tensor, scale: int) -> torch.Tensor:
    w, image, features, unnamed = graph.weights, x, x, 0
    for level in range(int(np.log2(scale))):
        f = leaky(conv_same(features, w[f"0_{level}f"], w[f"0_{level}bias"]))
        for i in range(1, 10):
            name = "Variable" + (f"_{unnamed}" if unnamed else "")
            f = leaky(conv_same(f, w[name], w[f"{i}_{level}bias"]))
            unnamed += 1
        feature_up = "reconstruction_2_deconv_f" + (f"_{2 * level}" if level else "")
        features = leaky(depth_to_space(conv_same(f, w[feature_up]), 2))
        image_up = w[f"reconstruction_2_deconv_f_{2 * level + 1}"]
        image = leaky(depth_to_space(conv_same(image, image_up), 2) + features)
    return image


# ---------------------------------------------------------------- tests


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_fsrcnn_graphs_compute_what_tensorflow_computes(tmp_path, scale):
    graph = fsrcnn_graph(scale, d=32, s=5, m=1, seed=scale)
    path = graph.write(tmp_path / "fsrcnn_small.pb")  # no scale in the name: the strides tell
    converted = convert_file(path)
    assert (converted.name, converted.scale) == ("fsrcnn-s", scale)
    assert converted.options["deconv_crop"] == (9 - scale) // 2  # TF's alignment, not centred
    x = torch.rand(1, 1, 7, 9)
    torch.testing.assert_close(ours(converted.model, x),
                               fsrcnn_reference(graph, nhwc(x), scale, m=1),
                               rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_espcn_graphs_compute_what_tensorflow_computes_with_their_relu(tmp_path, scale):
    graph = espcn_graph(scale, seed=scale)
    converted = convert_file(graph.write(tmp_path / f"ESPCN_x{scale}.pb"))
    assert (converted.name, converted.scale) == ("espcn", scale)
    assert converted.options["activation"] == "relu"  # TF-ESPCN's, not the paper's tanh
    x = torch.rand(1, 1, 6, 5)
    torch.testing.assert_close(ours(converted.model, x), espcn_reference(graph, nhwc(x), scale),
                               rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_quantised_edsr_graphs_compute_what_opencv_computes(tmp_path, scale):
    graph = edsr_graph(scale, blocks=2, channels=16, seed=scale)
    converted = convert_file(graph.write(tmp_path / f"EDSR_x{scale}.pb"))
    assert (converted.name, converted.scale) == ("edsr", scale)
    assert converted.options == {"blocks": 2, "channels": 16, "res_scale": 0.1}
    rgb = torch.rand(1, 3, 5, 6)
    # OpenCV's dnn_superres: BGR in [0, 255] minus its DIV2K mean in, the mean added back out
    mean = torch.tensor(OPENCV_BGR_MEAN)
    bgr = edsr_reference(graph, nhwc(rgb[:, [2, 1, 0]]) * 255 - mean, scale, blocks=2) + mean
    torch.testing.assert_close(ours(converted.model, rgb) * 255, bgr[..., [2, 1, 0]],
                               rtol=1e-4, atol=2e-3)


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_tf_lapsrn_graphs_compute_what_tensorflow_computes(tmp_path, scale):
    graph = lapsrn_graph(scale, seed=scale)
    converted = convert_file(graph.write(tmp_path / f"LapSRN_x{scale}.pb"))
    assert (converted.name, converted.scale) == ("lapsrn", scale)
    assert converted.options["design"] == "tf-lapsrn"
    x = torch.rand(1, 1, 5, 4)
    torch.testing.assert_close(ours(converted.model, x), lapsrn_reference(graph, nhwc(x), scale),
                               rtol=1e-4, atol=1e-4)


def test_the_decoder_reads_content_values_and_dequantised_constants(tmp_path):
    graph = Graph()
    rng = np.random.default_rng(0)
    content = graph.weight("f1", (3, 3, 1, 4), rng)
    values = graph.weight("b1", (4,), rng)  # written as float_val
    quantised = graph.weight("f2", (3, 3, 4, 4), rng, quantised=True)
    graph.op("deconv", "Conv2DBackpropInput", "shape", "f1", "x", strides=3)
    read = read_frozen_graph(graph.write(tmp_path / "g.pb"))
    torch.testing.assert_close(read["f1"], t(content))
    torch.testing.assert_close(read["b1"], t(values))
    torch.testing.assert_close(read["f2"], t(quantised))
    assert read.scale == 3 and "Conv2DBackpropInput" in read.ops


def test_a_graph_of_another_scale_or_layout_is_refused_on_one_line(tmp_path):
    path = fsrcnn_graph(3, d=32, s=5, m=1).write(tmp_path / "fsrcnn.pb")
    with pytest.raises(ValueError, match="upsamples x3") as refused:
        convert_file(path, "fsrcnn-s", 2)
    assert "\n" not in str(refused.value)
    other = Graph()
    other.weight("conv1/kernel", (3, 3, 1, 8), np.random.default_rng(0))
    with pytest.raises(ValueError, match="resFilter_one") as refused:
        convert_file(other.write(tmp_path / "other.pb"))
    assert "\n" not in str(refused.value)
    (tmp_path / "text.pb").write_text("not a graph")
    with pytest.raises(ValueError, match="no TensorFlow frozen graph"):
        convert_file(tmp_path / "text.pb")


def test_a_graph_given_as_weights_is_converted_on_the_fly(tmp_path, monkeypatch):
    monkeypatch.setenv("SUPERRES_CONVERTED", str(tmp_path / "converted"))
    graph = espcn_graph(3)
    upscaler = superres.load("espcn", 3, weights=graph.write(tmp_path / "ESPCN_x3.pb"))
    x = torch.rand(1, 1, 6, 5)
    torch.testing.assert_close(ours(upscaler.model, x), espcn_reference(graph, nhwc(x), 3),
                               rtol=1e-4, atol=1e-5)
