"""Every command ends in one line saying what it cannot do, never in a traceback: models it
cannot export, damaged files, folders where a file belongs, devices the machine lacks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from superres.cli import EXIT_FAILED, EXIT_MISSING, EXIT_USAGE, main
from superres.weights import ZOO

GOOD_WEIGHTS = str(ZOO / "fsrcnn_x2.safetensors")


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder: a small image, a folder of one, damaged files and an empty folder."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png", "small/s.png"):
        Path(name).parent.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (40, 36, 3), dtype=np.uint8)).save(name)
    Path("damaged.safetensors").write_bytes(Path(GOOD_WEIGHTS).read_bytes()[:300])
    Path("damaged.npz").write_bytes(b"PK\x03\x04 not a zip archive")
    Path("bad.yaml").write_text("model: [unclosed\n")
    Path("folder").mkdir()
    return tmp_path


CASES = {
    "export of a model that trains at test time": (
        ["export", "-m", "zssr", "-s", "2", "-o", "z.onnx"], EXIT_USAGE, "no fixed network"),
    "export into a folder": (
        ["export", "-m", "bicubic", "-s", "2", "-o", "folder"], EXIT_USAGE, "is a folder"),
    "convert of a folder": (
        ["convert", "folder", "-m", "edsr", "-s", "2", "-o", "e.safetensors"], EXIT_MISSING,
        "no checkpoint file"),
    "convert of a damaged file": (
        ["convert", "damaged.safetensors", "-m", "edsr", "-s", "2", "-o", "e.safetensors"],
        EXIT_FAILED, "damaged.safetensors: damaged"),
    "convert into a folder": (
        ["convert", GOOD_WEIGHTS, "-m", "edsr", "-s", "2", "-o", "folder"], EXIT_USAGE,
        "is a folder"),
    "upscale on a misspelt device": (
        ["upscale", "a.png", "-m", "bicubic", "-s", "2", "--device", "gpu0"], EXIT_USAGE,
        "device 'gpu0' is not available"),
    "upscale with damaged weights": (
        ["upscale", "a.png", "-m", "fsrcnn", "-s", "2", "-w", "damaged.safetensors"],
        EXIT_USAGE, "damaged.safetensors: damaged"),
    "upscale with no time budget": (
        ["upscale", "a.png", "-m", "zssr", "-s", "2", "--budget", "0"], EXIT_USAGE,
        "positive number of seconds"),
    "eval with a damaged NIQE model": (
        ["eval", "-m", "bicubic", "-s", "2", "-d", "small", "-q", "--niqe", "damaged.npz"],
        EXIT_USAGE, "not a readable .npz"),
    "train from damaged YAML": (
        ["train", "bad.yaml", "--max-steps", "1", "-q"], EXIT_USAGE, "not valid YAML"),
    "train with a --set that is not YAML": (
        ["train", "fsrcnn_x3", "--set", "data.patch=[", "--max-steps", "1", "-q"], EXIT_USAGE,
        "not valid YAML"),
    "burst into a format it cannot write": (
        ["burst", "a.png", "b.png", "-o", "sr.gif"], EXIT_USAGE, "cannot write .gif"),
    "burst into a folder": (["burst", "a.png", "b.png", "-o", "folder"], EXIT_USAGE, "is a folder"),
    "interpolate of damaged weights": (
        ["interpolate", GOOD_WEIGHTS, "damaged.safetensors", "-o", "i.safetensors"], EXIT_FAILED,
        "damaged.safetensors: damaged"),
    "interpolate into a folder": (
        ["interpolate", GOOD_WEIGHTS, GOOD_WEIGHTS, "-o", "folder"], EXIT_USAGE, "is a folder"),
    "interpolate under a file": (
        ["interpolate", GOOD_WEIGHTS, GOOD_WEIGHTS, "-o", "a.png/i.safetensors"], EXIT_FAILED,
        "a.png"),
}


@pytest.mark.parametrize("argv, code, message", list(CASES.values()), ids=list(CASES))
def test_a_command_that_cannot_do_it_says_why_in_one_line(files, capsys, argv, code, message):
    assert main(argv) == code
    err = capsys.readouterr().err
    assert err.startswith("superres: error: ") and err.count("\n") == 1, err
    assert message in err


def test_niqe_of_images_smaller_than_its_block_is_one_line(files, capsys):
    from superres.metrics.niqe import NIQEModel

    NIQEModel(np.zeros(36), np.eye(36)).save(files / "model.npz")
    argv = ["eval", "-m", "bicubic", "-s", "2", "-d", "small", "-q", "--niqe", "model.npz"]
    assert main(argv) == EXIT_FAILED
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs at least one 96x96 block" in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_a_device_this_machine_lacks_is_one_line(files, capsys):
    assert main(["upscale", "a.png", "-m", "bicubic", "-s", "2", "--device", "cuda"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "device 'cuda' is not available" in err


def test_export_of_a_model_torch_export_cannot_capture_is_one_line(files, capsys):
    pytest.importorskip("onnxscript", reason="ONNX export is the optional [onnx] extra")
    assert main(["export", "-m", "sparse-coding", "-s", "3", "-o", "sc.onnx"]) == EXIT_FAILED
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot be exported to ONNX" in err
    assert not list(files.glob("*sc.onnx*"))
