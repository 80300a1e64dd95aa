"""`superres.load(...).upscale(x)` takes any image kind and gives the same kind back."""

import numpy as np
import pytest
import torch
from PIL import Image

import superres
from superres.image.degrade import to_uint
from superres.image.resize import imresize
from superres.inference.upscaler import Upscaler
from superres.models.registry import ModelSpec
from superres.nn.upsamplers import Interpolate


@pytest.fixture(scope="module")
def bicubic():
    return superres.load("bicubic", scale=2)


def _rgb(h=9, w=7, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_uint8_rgb_comes_back_as_rounded_matlab_bicubic(bicubic):
    image = _rgb()
    out = bicubic.upscale(image)
    assert out.dtype == np.uint8 and out.shape == (18, 14, 3)
    np.testing.assert_array_equal(out, to_uint(imresize(image.astype(np.float32) / 255, 2) * 255))


def test_gray_2d_array_stays_2d(bicubic):
    assert bicubic.upscale(_rgb()[..., 0]).shape == (18, 14)


def test_uint16_keeps_its_bit_depth(bicubic):
    image = (_rgb().astype(np.uint16) * 257)
    out = bicubic.upscale(image)
    assert out.dtype == np.uint16 and out.max() > 255


def test_float_array_is_clamped_to_unit_range(bicubic):
    image = np.zeros((8, 8, 3), np.float32)
    image[::2, ::2] = 1.0  # bicubic overshoots on this pattern
    out = bicubic.upscale(image)
    assert out.dtype == np.float32 and out.min() >= 0 and out.max() <= 1


def test_alpha_is_upscaled_separately(bicubic):
    rgba = np.concatenate([_rgb(), np.full((9, 7, 1), 200, np.uint8)], axis=2)
    out = bicubic.upscale(rgba)
    assert out.shape == (18, 14, 4)
    np.testing.assert_array_equal(out[..., :3], bicubic.upscale(rgba[..., :3]))
    assert (out[..., 3] == 200).all()


def test_torch_tensors_keep_their_layout(bicubic):
    assert bicubic.upscale(torch.rand(3, 5, 6)).shape == (3, 10, 12)
    assert bicubic.upscale(torch.rand(2, 1, 5, 6)).shape == (2, 1, 10, 12)


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA"])
def test_pil_images_come_back_as_pil_in_the_same_mode(bicubic, mode):
    image = Image.fromarray(_rgb(), "RGB").convert(mode)
    out = bicubic.upscale(image)
    assert isinstance(out, Image.Image) and out.mode == mode and out.size == (14, 18)


def _interpolating_spec(color):
    return ModelSpec(name=f"cubic-{color}", summary="", paper="", scales=(2,),
                     build=lambda s: Interpolate(s), color=color, framework="post-upsampling")


def test_y_channel_models_get_luma_and_bicubic_chroma():
    # Bicubic is linear, so running it on Y with bicubic CbCr must equal RGB bicubic.
    y_model = Upscaler(_interpolating_spec("y"), 2, Interpolate(2).eval(), torch.device("cpu"))
    image = np.random.default_rng(1).random((10, 12, 3)).astype(np.float32)
    direct = np.clip(imresize(image.astype(np.float64), 2), 0, 1)
    np.testing.assert_allclose(y_model.upscale(image), direct, atol=1e-5)


def test_rgb_models_accept_gray_images():
    rgb_model = Upscaler(_interpolating_spec("rgb"), 2, Interpolate(2).eval(), torch.device("cpu"))
    gray = np.random.default_rng(2).random((6, 6)).astype(np.float32)
    np.testing.assert_allclose(rgb_model.upscale(gray), np.clip(imresize(gray, 2), 0, 1), atol=1e-5)


def test_unknown_model_and_unsupported_scale_are_clear_errors():
    with pytest.raises(KeyError, match="known models"):
        superres.load("srcnn9000", scale=2)
    with pytest.raises(ValueError, match="supports scales"):
        superres.load("bicubic", scale=5)


def test_wrong_channel_counts_are_rejected(bicubic):
    with pytest.raises(ValueError, match=r"C in 1\.\.4"):
        bicubic.upscale(np.zeros((4, 4, 5), np.uint8))


def test_import_superres_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, superres; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_public_evaluate_function_scores_a_folder(tmp_path):
    image = np.random.default_rng(3).integers(0, 256, (40, 44, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "a.png")
    (result,) = superres.evaluate("bicubic", 2, [str(tmp_path)])
    assert result.images == 1 and result.dataset == tmp_path.name and result.psnr > 5


class _Counting(torch.nn.Module):
    """Bicubic that records the batch size of every call."""

    def __init__(self) -> None:
        super().__init__()
        self.bicubic, self.batches = Interpolate(2), []

    def forward(self, x):
        self.batches.append(x.shape[0])
        return self.bicubic(x)


def test_images_of_one_size_run_as_one_batch_with_the_same_pixels():
    model = _Counting()
    spec = ModelSpec(name="counting", summary="", paper="", scales=(2,), build=lambda s: model,
                     color="any", framework="post-upsampling")
    up = Upscaler(spec, 2, model, torch.device("cpu"), batch=3)
    images = [_rgb(seed=i) for i in range(4)] + [_rgb(8, 8), _rgb(seed=9)[..., 0]]
    up.upscale(images[0])  # measures the receptive field with a call of its own
    model.batches.clear()
    together = up.upscale(images)
    assert model.batches == [3, 1, 1, 1]  # three of a size, the fourth, then the others
    for image, out in zip(images, together, strict=True):
        np.testing.assert_array_equal(out, up.upscale(image))


def test_large_images_are_never_batched():
    up = superres.load("bicubic", 2, batch=8)
    assert up.batch_size(100, 100) == 8
    assert up.batch_size(400, 400) == 1  # two would exceed one 512 x 512 tile
    assert superres.load("bicubic", 2, tile=1024, batch=8).batch_size(400, 400) == 6


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_pil_images_are_painted_into_the_output_with_the_same_pixels(mode):
    up = superres.load("bicubic", 2, tile=8)
    image = Image.fromarray(_rgb(30, 26)).convert(mode)
    out = up.upscale(image)
    assert out.mode == mode
    np.testing.assert_array_equal(np.asarray(out), up.upscale(np.asarray(image)))
    (alone,) = up.upscale([image])
    np.testing.assert_array_equal(np.asarray(alone), np.asarray(out))
