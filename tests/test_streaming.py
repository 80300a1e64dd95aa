"""Streaming tile by tile into the output gives the whole-image result: within 1e-4 as
floats, and as uint8 within one level, at the rare pixels whose value lies within float
rounding of a rounding boundary (the colour is computed in a different order)."""

import numpy as np
import pytest
import torch
from torch import nn

import superres
from superres.image.color import rgb_to_ycbcr, ycbcr_to_rgb
from superres.inference.tiles import Tiled
from superres.inference.upscaler import Upscaler
from superres.models import get_model
from superres.models.registry import ModelSpec
from superres.nn.upsamplers import Interpolate


def whole_image(model: nn.Module, color: str, scale: int, image: np.ndarray) -> np.ndarray:
    """The plain whole-image path: Y through the model and CbCr through bicubic, back to
    RGB (Y models on RGB), or the model on the image; float H x W x C in [0, 1]."""
    x = torch.from_numpy(image.astype(np.float32) / (255 if image.dtype == np.uint8 else 1))
    x = x.permute(2, 0, 1)[None]
    with torch.no_grad():
        if color == "y" and x.shape[1] == 3:
            ycbcr = rgb_to_ycbcr(x)
            luma, chroma = model(ycbcr[:, :1]), Interpolate(scale)(ycbcr[:, 1:])
            out = ycbcr_to_rgb(torch.cat([luma, chroma], dim=1))
        elif color == "rgb" and x.shape[1] == 1:
            out = model(x.expand(-1, 3, -1, -1)).mean(dim=1, keepdim=True)
        else:
            out = model(x)
    return out.clamp(0, 1)[0].permute(1, 2, 0).numpy()


def assert_same_image(uint8: np.ndarray, reference: np.ndarray) -> None:
    """Equal to the float reference rounded, but for at most 0.1% of samples off by one."""
    expected = np.clip(np.round(reference * 255), 0, 255)
    difference = np.abs(uint8.astype(float) - expected)
    assert difference.max() <= 1 and (difference > 0).mean() < 1e-3


def upscaler(name: str, scale: int, tile: int | None, seed: int = 0) -> Upscaler:
    torch.manual_seed(seed)
    return Upscaler(get_model(name), scale, superres.build(name, scale).eval(),
                    torch.device("cpu"), tile=tile)


RGB = np.random.default_rng(0).integers(0, 256, (53, 38, 3), dtype=np.uint8)


# ESPCN ends in a pixel shuffle (its colour is finished as phase planes), FSRCNN in a
# transposed convolution, SRCNN upsamples first, bicubic runs on the RGB channels.
@pytest.mark.parametrize(("name", "scale"), [("espcn", 4), ("espcn", 3), ("fsrcnn", 3),
                                             ("srcnn", 2), ("bicubic", 3)])
@pytest.mark.parametrize("tile", [None, 24])
def test_streamed_rgb_equals_the_whole_image_path(name, scale, tile, one_thread):
    up = upscaler(name, scale, tile)
    reference = whole_image(up.model, up.color, scale, RGB)
    floats = up.upscale(RGB.astype(np.float32) / 255)
    np.testing.assert_allclose(floats, reference, atol=1e-4)
    assert_same_image(up.upscale(RGB), reference)


@pytest.mark.parametrize("name", ["espcn", "bicubic"])
def test_gray_images_go_through_the_network_directly(name, one_thread):
    up = upscaler(name, 2, tile=16)
    gray = RGB[..., 1]
    out = up.upscale(gray)
    assert out.shape == (106, 76)
    assert_same_image(out, whole_image(up.model, up.color, 2, gray[..., None])[..., 0])


def _rgb_spec() -> ModelSpec:
    return ModelSpec(name="tiny-rgb", summary="", paper="", scales=(2,),
                     framework="post-upsampling",
                     build=lambda s: nn.Sequential(nn.Conv2d(3, 12, 3, padding=1),
                                                   nn.PixelShuffle(2)), color="rgb")


@pytest.mark.parametrize("channels", [3, 1])
def test_rgb_models_on_colour_and_gray_images(channels, one_thread):
    torch.manual_seed(3)
    model = _rgb_spec().build(2).eval()
    up = Upscaler(_rgb_spec(), 2, model, torch.device("cpu"), tile=20)
    image = RGB[..., :channels]
    assert_same_image(up.upscale(image).reshape(106, 76, channels),
                      whole_image(model, "rgb", 2, image))


def test_blended_tiles_stream_like_the_tiled_wrapper(one_thread):
    # VDSR with a pad of 3 (far below its receptive field): tiles are blended by bands
    up = upscaler("vdsr", 2, tile=24)
    up._context = (3, 4)
    reference = whole_image(Tiled(up.model, 2, tile=24, pad=3, blend=4), "y", 2, RGB)
    np.testing.assert_allclose(up.upscale(RGB.astype(np.float32) / 255), reference, atol=1e-4)


def test_alpha_is_bicubic_and_16_bit_images_keep_their_depth(one_thread):
    up = upscaler("espcn", 2, tile=20)
    rgba = np.concatenate([RGB, RGB[..., :1]], axis=2).astype(np.uint16) * 257
    out = up.upscale(rgba)
    assert out.dtype == np.uint16 and out.shape == (106, 76, 4)
    alpha = whole_image(Interpolate(2), "any", 2, rgba[..., 3:].astype(np.float32) / 65535)
    assert np.abs(out[..., 3] - np.round(alpha[..., 0] * 65535)).max() <= 1
    colour = whole_image(up.model, "y", 2, rgba[..., :3].astype(np.float32) / 65535)
    assert np.abs(out[..., :3] / 65535 - colour).max() < 1e-4


def test_workers_in_parallel_give_the_same_pixels():
    up = upscaler("espcn", 3, tile=None)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        alone = up.upscale(RGB)
        torch.set_num_threads(3)  # three workers, one tile each
        together = up.upscale(RGB)
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(threads)
    np.testing.assert_array_equal(together, alone)
