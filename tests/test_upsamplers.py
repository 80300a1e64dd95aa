"""The transposed convolution's phase rewrite computes exactly what PyTorch's kernel does."""

import pytest
import torch
from torch import nn

from superres.nn.upsamplers import TransposedConv


@pytest.mark.parametrize(("scale", "kernel", "channels_in", "channels_out"),
                         [(2, 9, 56, 1), (3, 9, 56, 1), (4, 9, 56, 1), (2, 3, 8, 8),
                          (3, 7, 5, 2), (4, 5, 3, 2), (2, 1, 3, 3)])
def test_phase_rewrite_matches_transposed_convolution(scale, kernel, channels_in, channels_out):
    torch.manual_seed(0)
    layer = TransposedConv(channels_in, channels_out, scale, kernel=kernel).double()
    reference = nn.ConvTranspose2d(channels_in, channels_out, kernel, stride=scale,
                                   padding=kernel // 2, output_padding=scale - 1).double()
    reference.load_state_dict(layer.state_dict())
    x = torch.randn(2, channels_in, 7, 10, dtype=torch.float64, requires_grad=True)
    y = layer(x)
    assert y.shape == (2, channels_out, 7 * scale, 10 * scale)
    torch.testing.assert_close(y, reference(x), rtol=0, atol=1e-12)
    # gradients reach the same weights: the layout and the function are the transposed conv's
    grad = torch.randn_like(y)
    ours = torch.autograd.grad(y, [x, layer.weight, layer.bias], grad)
    theirs = torch.autograd.grad(reference(x), [x, reference.weight, reference.bias], grad)
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


def test_even_kernel_is_refused():
    with pytest.raises(ValueError, match="odd kernel"):
        TransposedConv(4, 4, 2, kernel=4)


def test_onnx_export_keeps_the_transposed_convolution(tmp_path):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    from superres.inference.onnx import export_onnx

    path = export_onnx(TransposedConv(4, 1, 3), 4, tmp_path / "deconv.onnx")
    ops = {node.op_type for node in onnx.load(path).graph.node}
    assert "ConvTranspose" in ops and "DepthToSpace" not in ops
