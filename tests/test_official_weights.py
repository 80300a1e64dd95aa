"""The authors' released SRCNN, FSRCNN, VDSR, LapSRN and MS-LapSRN weights (MATLAB .mat) load
into superres's models, compute what the authors' MATLAB test code computes, and reproduce the
papers' Set5 numbers as an independent re-implementation of that code measured them.

The references below are written from the files' arrays with MATLAB's conventions (column-major
reshapes, imfilter's correlation with replicated borders, FSRCNN's deconv.m, MatConvNet's
vl_nnconv / vl_nnconvt and DagNN graphs), in NumPy, not with superres's modules. The files are
found in `$SUPERRES_WEIGHTS/official` (docs/official_weights.md says where they come from).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import superres
from superres.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main
from superres.evaluation import evaluate_dataset
from superres.models.convert import Converted, MissingScale, convert_file
from superres.models.convert.matlab import RELEASED, flat_kernels, read_mat
from superres.nn.upsamplers import TransposedConv

pytestmark = pytest.mark.usefixtures("one_thread")

FILES = {
    ("srcnn", 2): "SRCNN/model/9-5-5(ImageNet)/x2.mat",
    ("srcnn", 3): "SRCNN/model/9-5-5(ImageNet)/x3.mat",
    ("srcnn", 4): "SRCNN/model/9-5-5(ImageNet)/x4.mat",
    ("srcnn-915", 3): "SRCNN/model/9-1-5(91 images)/x3.mat",
    ("fsrcnn", 2): "FSRCNN/FSRCNN_test/model/FSRCNN/x2.mat",
    ("fsrcnn", 3): "FSRCNN/FSRCNN_test/model/FSRCNN/x3.mat",
    ("fsrcnn", 4): "FSRCNN/FSRCNN_test/model/FSRCNN/x4.mat",
    ("fsrcnn-s", 3): "FSRCNN/FSRCNN_test/model/FSRCNN-s/x3.mat",
    ("vdsr", 3): "VDSR/Test/VDSR_Official.mat",
    ("lapsrn", 2): "LapSRN/pretrained_models/LapSRN_x2.mat",
    ("lapsrn", 4): "LapSRN/pretrained_models/LapSRN_x4.mat",
    ("lapsrn", 8): "LapSRN/pretrained_models/LapSRN_x8.mat",
    ("ms-lapsrn", 4): "LapSRN/pretrained_models/MSLapSRN_D5R8.mat",
}
# Set5 (Y, shave = scale) as an independent re-implementation of the authors' MATLAB test
# code measured it (the official folder's README); the deep models once each, to stay fast.
SET5 = {("srcnn", 2): 36.66, ("srcnn", 3): 32.76, ("srcnn", 4): 30.49, ("fsrcnn", 2): 37.00,
        ("fsrcnn", 3): 33.17, ("fsrcnn", 4): 30.71, ("vdsr", 3): 33.66, ("lapsrn", 8): 26.14}


def official_folder() -> Path:
    root = os.environ.get("SUPERRES_WEIGHTS", "")
    folder = Path(root) / "official"
    if not root or not folder.is_dir():
        pytest.skip("the authors' .mat releases are not in $SUPERRES_WEIGHTS/official "
                    "(docs/official_weights.md lists them)")
    return folder


@pytest.fixture(scope="module")
def official() -> Path:
    return official_folder()


@pytest.fixture(scope="module")
def release(official) -> Callable[..., Converted]:
    """`convert_file` of a release, each converted once for the module."""
    return cache(lambda key, **given: convert_file(official / FILES[key], **given))


@pytest.fixture(scope="module")
def converted(official, tmp_path_factory) -> dict[tuple[str, int], Path]:
    """The releases the Set5 checks use, converted as `superres convert` does (no -m; -s
    where the file does not tell it): safetensors files with the build options they need."""
    out = tmp_path_factory.mktemp("official")
    files = {}
    for name, scale in SET5:
        file = FILES[name, scale]
        target = out / f"{name}_x{scale}.safetensors"
        scale_given = ["-s", str(scale)] if name in ("vdsr", "ms-lapsrn") else []
        assert main(["convert", str(official / file), *scale_given, "-o", str(target)]) == EXIT_OK
        files[name, scale] = target
    return files


def picture(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A Y image in [0, 1] with smooth regions, edges and texture."""
    rows, cols = np.mgrid[0:height, 0:width] / 5.0
    noise = np.random.default_rng(seed).uniform(-0.05, 0.05, (height, width))
    return np.clip(0.5 + 0.35 * np.sin(cols + np.cos(rows)) * np.cos(0.6 * rows) + noise, 0, 1)


def run(model: torch.nn.Module, image: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(image).float()[None, None])[0, 0].double().numpy()


# ---------------------------------------------------------------- MATLAB, in NumPy


def correlate(x: np.ndarray, filters: np.ndarray, bias: np.ndarray, pad: int,
              border: str) -> np.ndarray:
    """imfilter(x, f, 'same', 'replicate') summed over inputs (border "edge"), or
    vl_nnconv(x, f, b, 'Pad', pad) (border "constant"): y(i,j,o) = b(o) +
    sum f(u,v,c,o) x(i+u-pad, j+v-pad, c), no kernel flip. x: H x W x C, f: k x k x C x O."""
    size = filters.shape[0]
    padded = np.pad(x, ((pad, pad), (pad, pad), (0, 0)), mode=border)
    windows = np.lib.stride_tricks.sliding_window_view(padded, (size, size), axis=(0, 1))
    return np.einsum("hwcuv,uvco->hwo", windows, filters) + bias.ravel()


def matlab_kernel(flat: np.ndarray) -> np.ndarray:
    """reshape(flat, k, k): MATLAB fills columns first."""
    size = math.isqrt(flat.size)
    kernel = np.empty((size, size))
    for index, value in enumerate(flat.ravel()):
        kernel[index % size, index // size] = value
    return kernel


def srcnn_matlab(v: Mapping[str, Any], im_b: np.ndarray) -> np.ndarray:
    """SRCNN.m: three imfilter(..., 'same', 'replicate') layers, ReLU after the first two."""
    w1, w2, w3 = v["weights_conv1"], v["weights_conv2"], v["weights_conv3"]
    f1 = np.stack([matlab_kernel(w1[:, i]) for i in range(w1.shape[1])], -1)[:, :, None]
    f2 = np.stack([np.stack([matlab_kernel(w2[j, :, i]) for i in range(w2.shape[2])], -1)
                   for j in range(w2.shape[0])], 2)
    f3 = np.stack([matlab_kernel(w3[i, :]) for i in range(w3.shape[0])], -1)[..., None]
    x = im_b[..., None]
    for filters, bias, relu in ((f1, v["biases_conv1"], True), (f2, v["biases_conv2"], True),
                                (f3, v["biases_conv3"], False)):
        x = correlate(x, filters, bias, filters.shape[0] // 2, "edge")
        x = np.maximum(x, 0) if relu else x
    return x[..., 0]


def deconv_matlab(x: np.ndarray, kernel: np.ndarray, stride: int) -> np.ndarray:
    """FSRCNN's deconv.m: the input padded by one replicated pixel, each pixel adding the kernel
    at stride steps, the centre cropped to stride x the input."""
    border, size = 1, kernel.shape[0]
    height, width = x.shape
    x = np.pad(x, border, mode="edge")
    out = np.zeros((x.shape[0] * stride + size - 1, x.shape[1] * stride + size - 1))
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            out[i * stride:i * stride + size, j * stride:j * stride + size] += x[i, j] * kernel
    start = (size + 1) // 2 + stride * border - 1
    return out[start:start + height * stride, start:start + width * stride]


def fsrcnn_matlab(v: Mapping[str, Any], im_l: np.ndarray, scale: int) -> np.ndarray:
    """FSRCNN.m: imfilter 'replicate' layers with one PReLU slope each, then deconv.m."""
    weights, biases, slopes = (list(v[k].ravel()) for k in
                               ("weights_conv", "biases_conv", "prelu_conv"))
    x = im_l[..., None]
    for w, b, a in zip(weights[:-1], biases[:-1], slopes[:-1], strict=True):
        filters = np.stack([np.stack([matlab_kernel(w[j, :, i]) for i in range(w.shape[2])], -1)
                            for j in range(w.shape[0])], 2)
        x = correlate(x, filters, b, filters.shape[0] // 2, "edge")
        x = np.maximum(x, 0) + a.item() * np.minimum(x, 0)
    w = weights[-1]
    return sum(deconv_matlab(x[..., j], matlab_kernel(w[0, :, j]), scale)
               for j in range(w.shape[2])) + biases[-1].item()


def vdsr_matlab(model: np.ndarray, im_y: np.ndarray) -> np.ndarray:
    """VDSR_Matconvnet.m: vl_nnconv with 'Pad' 1 and ReLU between, plus the input."""
    weights, biases = model[0, 0]["weight"].ravel(), model[0, 0]["bias"].ravel()
    x = im_y[..., None]
    for index, (w, b) in enumerate(zip(weights, biases, strict=True)):
        x = correlate(np.maximum(x, 0) if index else x, w.reshape(3, 3, w.shape[2], -1), b, 1,
                      "constant")
    return x[..., 0] + im_y


def convt(x: np.ndarray, filters: np.ndarray, bias: np.ndarray, upsample: int,
          crop: list[int]) -> np.ndarray:
    """vl_nnconvt: each input pixel adds f(:,:,out,in) at upsample steps; then crop
    [top bottom left right]. filters: k x k x out x in."""
    size, _, outputs, _ = filters.shape
    height, width, _ = x.shape
    full = np.zeros(((height - 1) * upsample + size, (width - 1) * upsample + size, outputs))
    for u in range(size):
        for v in range(size):
            full[u:u + (height - 1) * upsample + 1:upsample,
                 v:v + (width - 1) * upsample + 1:upsample] += x @ filters[u, v].T
    top, bottom, left, right = crop
    return full[top:full.shape[0] - bottom, left:full.shape[1] - right] + bias.ravel()


def dagnn_matlab(net: np.ndarray, inputs: dict[str, np.ndarray], output: str) -> np.ndarray:
    """A MatConvNet DagNN run layer by layer as its file lists them (Conv, ReLU with leak,
    ConvTranspose, Sum); layers whose inputs are not given (losses, other scales) are left."""
    params = {str(p["name"].item()): p["value"] for p in net[0, 0]["params"].ravel()}
    values = {name: image[..., None] for name, image in inputs.items()}
    for layer in net[0, 0]["layers"].ravel():
        kind = str(layer["type"].item())
        names = [str(i.item()) for i in layer["inputs"].ravel()]
        if not all(name in values for name in names):
            continue
        block = layer["block"][0, 0]
        weights = [params[str(p.item())] for p in layer["params"].ravel()]
        x = values[names[0]]
        filters = weights and weights[0].reshape(weights[0].shape + (1,) * (4 - weights[0].ndim))
        if kind == "dagnn.Conv":
            y = correlate(x, filters, weights[1], int(block["pad"].ravel()[0]), "constant")
        elif kind == "dagnn.ReLU":
            y = np.where(x > 0, x, block["leak"].item() * x)
        elif kind == "dagnn.ConvTranspose":
            bias = weights[1] if len(weights) > 1 else np.zeros(1)
            y = convt(x, filters, bias, int(block["upsample"].ravel()[0]),
                      [int(c) for c in block["crop"].ravel()])
        elif kind == "dagnn.Sum":
            y = sum(values[name] for name in names)
        else:
            continue
        values[str(layer["outputs"].ravel()[0].item())] = y
    return values[output][..., 0]


# ---------------------------------------------------------------- conventions, no files needed


def test_a_flat_kernel_is_read_in_matlab_column_major_order():
    flat = np.arange(9.0)  # MATLAB reshape(0:8, 3, 3) = [0 3 6; 1 4 7; 2 5 8]
    kernel = flat_kernels(flat.reshape(1, 9, 1), "k")[0, 0].numpy()
    np.testing.assert_array_equal(kernel, [[0, 3, 6], [1, 4, 7], [2, 5, 8]])
    np.testing.assert_array_equal(kernel, matlab_kernel(flat))


@pytest.mark.parametrize(("scale", "kernel", "crop", "border"),
                         [(2, 3, 0, 0), (2, 9, 4, 1), (3, 9, 3, 1), (4, 9, 4, 1), (3, 9, 4, 0)])
def test_transposed_conv_crops_and_borders_as_defined(scale, kernel, crop, border):
    """Output row scale*i + a - crop receives input row i times kernel row a, on the input
    with `border` replicated pixels per side (FSRCNN's deconv.m; MatConvNet's crop)."""
    torch.manual_seed(0)
    layer = TransposedConv(3, 2, scale, kernel=kernel, crop=crop, border=border).double()
    x = torch.randn(1, 3, 5, 6, dtype=torch.float64)
    full = torch.nn.functional.conv_transpose2d(
        torch.nn.functional.pad(x, (border,) * 4, mode="replicate"), layer.weight, layer.bias,
        stride=scale)
    first = crop + scale * border
    expected = full[..., first:first + 5 * scale, first:first + 6 * scale]
    torch.testing.assert_close(layer(x), expected, rtol=0, atol=1e-12)


# ---------------------------------------------------------------- the releases


def test_the_release_table_has_every_published_file_and_digest(official):
    """Each release's repository path is the official folder's copy, with its sha256."""
    sums = dict(reversed(line.split("  ", 1)) for line in
                (official / "SHA256SUMS").read_text().splitlines() if line.strip())
    folder = {"SRCNN": "SRCNN", "FSRCNN": "FSRCNN", "VDSR": "VDSR"}
    local = {f"{folder.get(r.layout, 'LapSRN')}/{r.file.removeprefix('Algorithm/FSRCNN/')}": r
             for r in RELEASED}
    assert set(local) == set(sums)
    for path, release in local.items():
        assert release.sha256 == sums[path], path


@pytest.mark.parametrize(("model", "scale", "params", "options"), [
    ("srcnn", 3, 57_281, {"kernels": [9, 5, 5], "n1": 64, "n2": 32,
                          "padding_mode": "replicate"}),
    ("srcnn-915", 3, 8_129, {"kernels": [9, 1, 5], "n1": 64, "n2": 32,
                             "padding_mode": "replicate"}),
    ("fsrcnn", 2, 12_809, {"d": 56, "s": 12, "m": 4, "padding_mode": "replicate"}),
    ("fsrcnn", 3, 12_809, {"d": 56, "s": 12, "m": 4, "deconv_crop": 3,
                           "padding_mode": "replicate"}),
    ("fsrcnn-s", 3, 4_086, {"d": 32, "s": 5, "m": 1, "deconv_crop": 3,
                            "padding_mode": "replicate"}),
    ("lapsrn", 2, 407_441, {"depth": 10, "channels": 64, "upconv_crop": 0}),
    ("lapsrn", 4, 814_242, {"depth": 10, "channels": 64, "upconv_crop": 0}),
    ("lapsrn", 8, 667_123, {"depth": 5, "channels": 64, "upconv_crop": 0}),
])
def test_a_release_is_read_as_its_model_scale_and_sizes(release, model, scale, params, options):
    """No -m, no -s: the sizes come from the shapes (LapSRN x8's 5 convolutions per level, its
    scale from its levels), SRCNN's and FSRCNN's scale from the release's sha256."""
    found = release((model, scale))
    assert (found.name, found.scale, found.options) == (model, scale, options)
    assert sum(p.numel() for p in found.model.parameters()) == params


def test_vdsr_and_ms_lapsrn_serve_every_scale_from_one_file(official):
    for model, scale, params in (("vdsr", 4, 665_921), ("ms-lapsrn", 8, 222_801)):
        with pytest.raises(MissingScale, match=r"^\S+\.mat: it holds one .* network for x2, "
                                               r".* give the scale with -s$"):
            convert_file(official / FILES[model, 3 if model == "vdsr" else 4])
        found = convert_file(official / FILES[model, 3 if model == "vdsr" else 4], scale=scale)
        assert (found.name, found.scale) == (model, scale)
        assert sum(p.numel() for p in found.model.parameters()) == params
    assert found.options == {"depth": 5, "channels": 64, "recursions": 8, "upconv_crop": 0}


# ---------------------------------------------------------------- against MATLAB's arithmetic


def test_srcnn_computes_srcnn_m(official, release):
    image = picture(21, 26)
    for key in (("srcnn", 3), ("srcnn-915", 3)):
        model = release(key).model
        reference = srcnn_matlab(read_mat(official / FILES[key]), image)
        np.testing.assert_allclose(run(model.body, image), reference, rtol=0, atol=1e-5)


def test_fsrcnn_computes_fsrcnn_m_and_deconv_m(official, release):
    image = picture(9, 11, seed=1)
    for key in (("fsrcnn", 2), ("fsrcnn", 4), ("fsrcnn-s", 3), ("fsrcnn", 3)):
        model = release(key).model
        reference = fsrcnn_matlab(read_mat(official / FILES[key]), image, key[1])
        ours = run(model, image)
        if key[1] == 3:  # the x3 models' output lies one HR pixel earlier (models/fsrcnn.py)
            ours, reference = ours[1:, 1:], reference[:-1, :-1]
        np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-5)


def test_vdsr_computes_vdsr_matconvnet_m(official, release):
    image = picture(17, 15, seed=2)
    model = release(("vdsr", 3), scale=3).model
    reference = vdsr_matlab(read_mat(official / FILES["vdsr", 3])["model"], image)
    np.testing.assert_allclose(run(model.body, image), reference, rtol=0, atol=1e-5)


def test_lapsrn_and_ms_lapsrn_compute_their_dagnn(official, release):
    image = picture(7, 9, seed=3)
    for key, inputs, output in ((("lapsrn", 4), "LR", "level1_output"),
                                (("lapsrn", 8), "LR", "level1_output"),
                                (("ms-lapsrn", 4), "x4SR_LR", "x4SR_4x_output")):
        model = release(key, scale=key[1]).model
        net = read_mat(official / FILES[key])["net"]
        reference = dagnn_matlab(net, {inputs: image}, output)
        np.testing.assert_allclose(run(model, image), reference, rtol=0, atol=1e-5)


# ---------------------------------------------------------------- the papers' numbers


@pytest.mark.parametrize("key", list(SET5))
def test_set5_psnr_is_the_authors_test_code_s(converted, require_dataset, key):
    require_dataset("Set5")
    name, scale = key
    upscaler = superres.load(name, scale, weights=converted[key])  # what `superres eval` runs
    result = evaluate_dataset(upscaler, "Set5", progress=False)
    assert result.psnr == pytest.approx(SET5[key], abs=0.05)


# ---------------------------------------------------------------- wrong files


def one_line_error(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(args)
    error = capsys.readouterr().err.strip()
    assert "\n" not in error
    return code, error


def test_wrong_files_are_refused_in_one_line_naming_the_file(official, tmp_path, capsys):
    out = ["-o", str(tmp_path / "out.safetensors")]
    lapsrn = official / FILES["lapsrn", 4]
    code, error = one_line_error(["convert", str(lapsrn), "-m", "srcnn", "-s", "3", *out], capsys)
    assert code == EXIT_FAILED
    assert error.startswith("superres: error: LapSRN_x4.mat: ")
    assert "holds LAPSRN x4 (depth=10, channels=64), but srcnn x3 is SRCNN" in error

    truncated = tmp_path / "x3.mat"
    truncated.write_bytes((official / FILES["srcnn", 3]).read_bytes()[:30_000])
    code, error = one_line_error(["convert", str(truncated), *out], capsys)
    assert code == EXIT_FAILED
    assert "x3.mat is a damaged or truncated .mat file" in error
    assert "expected the authors' SRCNN, FSRCNN, VDSR, LapSRN or MS-LapSRN weights" in error

    page = tmp_path / "LapSRN_x2.mat"
    page.write_text("<!DOCTYPE html><html><body>Page not found</body></html>")
    code, error = one_line_error(["convert", str(page), "-m", "lapsrn", "-s", "2", *out], capsys)
    assert code == EXIT_FAILED
    assert "LapSRN_x2.mat is no MATLAB .mat file (it begins '<!DOCTYPE html><htm')" in error

    from scipy.io import savemat

    savemat(tmp_path / "other.mat", {"weights": np.zeros((3, 3))})
    code, error = one_line_error(["convert", str(tmp_path / "other.mat"), *out], capsys)
    assert code == EXIT_FAILED
    assert "other.mat: " in error and "it holds weights, not weights_conv1 (SRCNN)" in error

    vdsr = official / FILES["vdsr", 3]
    code, error = one_line_error(["convert", str(vdsr), *out], capsys)
    assert code == EXIT_USAGE and error.endswith("give the scale with -s")


def test_weights_saved_for_one_model_are_refused_by_another(converted, tmp_path):
    with pytest.raises(ValueError, match=r"srcnn_x3\.safetensors records build options .* "
                                         r"fsrcnn does not take"):
        superres.load("fsrcnn", 3, weights=converted["srcnn", 3])
    plain = tmp_path / "plain.safetensors"  # a file without options builds the registered model
    save_file(superres.build("srcnn", 3).state_dict(), plain)
    assert superres.load("srcnn", 3, weights=plain).model.body[0].padding_mode == "zeros"
