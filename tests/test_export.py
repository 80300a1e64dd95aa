"""ONNX export takes any image size and matches PyTorch; the ONNX Runtime backend upscales."""

import numpy as np
import pytest
import torch

import superres
from superres.cli import EXIT_OK, main

ort = pytest.importorskip("onnxruntime", reason="ONNX support is the optional [onnx] extra")


@pytest.mark.parametrize(("name", "scale", "channels"),
                         [("fsrcnn", 3, 1), ("srcnn", 2, 1), ("espcn", 4, 1), ("bicubic", 3, 3)])
def test_exported_graph_runs_at_two_sizes_and_matches_pytorch(name, scale, channels, tmp_path):
    from superres.inference.onnx import export_onnx

    torch.manual_seed(0)
    model = superres.build(name, scale).eval()
    path = export_onnx(model, None if name == "bicubic" else channels, tmp_path / "m.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for size in [(24, 20), (37, 51)]:
        x = torch.rand(1, channels, *size)
        (out,) = session.run(None, {"lr": x.numpy()})
        with torch.no_grad():
            np.testing.assert_allclose(out, model(x).numpy(), atol=1e-4)
        assert out.shape == (1, channels, size[0] * scale, size[1] * scale)


def test_export_command_and_onnx_backend_agree_with_torch(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert main(["export", "-m", "bicubic", "-s", "2", "-o", str(tmp_path / "b.onnx")]) == EXIT_OK
    assert "any H and W" in capsys.readouterr().out
    image = np.random.default_rng(0).integers(0, 256, (30, 26, 3), dtype=np.uint8)
    onnx_out = superres.load("bicubic", 2, backend="onnx", tile=16).upscale(image)
    torch_out = superres.load("bicubic", 2).upscale(image)
    assert np.abs(onnx_out.astype(int) - torch_out).max() <= 1
    assert list((tmp_path / "cache" / "superres" / "onnx").glob("bicubic_x2-*.onnx"))
