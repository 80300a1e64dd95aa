"""A loaded model ready to upscale images of any kind: the object `superres.load` returns.

It knows its scale and colour space, so callers never guess: Y-channel models (SRCNN,
FSRCNN, ...) get the BT.601 Y channel and the chroma is upscaled with bicubic, as in
their papers; alpha is always upscaled separately with bicubic.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from PIL import Image as PILImage
from torch import nn

from superres.color import rgb_to_ycbcr, ycbcr_to_rgb
from superres.degrade import to_uint
from superres.infer import SelfEnsemble, Tiled, default_pad
from superres.io import Picture, from_pil, to_pil
from superres.models.registry import Color, ModelSpec
from superres.nn.interpolation import Interpolate

ImageLike = TypeVar("ImageLike", np.ndarray, torch.Tensor, PILImage.Image, Picture)


@dataclass
class Upscaler:
    """A model built for one scale, in eval mode on one device."""

    spec: ModelSpec
    scale: int
    model: nn.Module
    device: torch.device

    def __post_init__(self) -> None:
        # Chroma and alpha: MATLAB bicubic, as the exact (and fast) polyphase convolution.
        self.bicubic = Interpolate(self.scale)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def color(self) -> Color:
        return self.spec.color

    @torch.no_grad()
    def run(self, x: torch.Tensor) -> torch.Tensor:
        """N x C x H x W float in [0, 1] (C = 1 or 3) -> upscaled, clamped to [0, 1]."""
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"expected N x C x H x W with C = 1 or 3, got {tuple(x.shape)}")
        x = x.to(self.device, torch.float32).contiguous(memory_format=torch.channels_last)
        if self.color == "any":
            out = self.model(x)
        elif x.shape[1] == 1:  # gray: the intensity is the luma
            out = self._luma_or_rgb(x)
        elif self.color == "y":
            ycbcr = rgb_to_ycbcr(x)
            luma = self.model(ycbcr[:, :1])
            chroma = self.bicubic(ycbcr[:, 1:])
            out = ycbcr_to_rgb(torch.cat([luma, chroma], dim=1))
        else:
            out = self.model(x)
        return out.clamp_(0, 1)

    def _luma_or_rgb(self, gray: torch.Tensor) -> torch.Tensor:
        if self.color == "y":
            return self.model(gray)
        return self.model(gray.expand(-1, 3, -1, -1)).mean(dim=1, keepdim=True)

    def upscale(self, image: ImageLike) -> ImageLike:
        """Upscale a PIL image, a Picture, a NumPy array or a torch tensor; same kind back.

        NumPy: H x W or H x W x C (C = 1 to 4), uint8/uint16 or float in [0, 1].
        torch: C x H x W or N x C x H x W float in [0, 1].
        A 2nd (gray) or 4th (RGB) channel is alpha.
        """
        if isinstance(image, Picture):
            return self.upscale_picture(image)
        if isinstance(image, PILImage.Image):
            return to_pil(self.upscale_picture(from_pil(image)))
        if isinstance(image, np.ndarray):
            return self._upscale_array(image)
        if isinstance(image, torch.Tensor):
            return self._upscale_tensor(image)
        raise TypeError(f"cannot upscale a {type(image).__name__}")

    def upscale_picture(self, picture: Picture) -> Picture:
        """Upscale colour and alpha of a decoded image, keeping its bit depth."""
        pixels = self._upscale_array(picture.pixels)
        alpha = None
        if picture.alpha is not None:
            alpha = self._upscale_array(picture.alpha, interpolate_only=True)
        return Picture(pixels=pixels, alpha=alpha, source=picture.source, format=picture.format)

    def _upscale_array(self, array: np.ndarray, interpolate_only: bool = False) -> np.ndarray:
        squeeze = array.ndim == 2
        hwc = array[..., None] if squeeze else array
        if hwc.ndim != 3 or hwc.shape[2] not in (1, 2, 3, 4):
            raise ValueError(f"expected H x W or H x W x C with C in 1..4, got {array.shape}")
        peak = _peak(hwc.dtype)
        x = torch.from_numpy(np.ascontiguousarray(hwc, dtype=np.float32)).permute(2, 0, 1)[None]
        out = self._upscale_tensor(x / peak, interpolate_only)[0].permute(1, 2, 0).numpy()
        if np.issubdtype(array.dtype, np.integer):
            out = to_uint(out * peak, array.dtype)
        else:
            out = out.astype(array.dtype)
        return out[..., 0] if squeeze else out

    def _upscale_tensor(self, x: torch.Tensor, interpolate_only: bool = False) -> torch.Tensor:
        batched = x.ndim == 4
        x = x if batched else x[None]
        if x.ndim != 4 or not x.is_floating_point():
            raise ValueError("expected a float tensor C x H x W or N x C x H x W in [0, 1]")
        self._check_size(x.shape[-2:])
        if interpolate_only:
            out = self.bicubic(x.float()).clamp_(0, 1)
        elif x.shape[1] in (2, 4):  # the last channel is alpha
            colour = self.run(x[:, :-1])
            alpha = self.bicubic(x[:, -1:].float().to(colour.device)).clamp_(0, 1)
            out = torch.cat([colour, alpha], dim=1)
        else:
            out = self.run(x)
        out = out.to(x.device, x.dtype)
        return out if batched else out[0]

    def _check_size(self, size: Any) -> None:
        height, width = int(size[0]), int(size[1])
        if min(height, width) < 1:
            raise ValueError(f"cannot upscale an empty image ({width}x{height})")


def _peak(dtype: np.dtype) -> float:
    """The value that stands for full intensity in an array of this dtype."""
    if np.issubdtype(dtype, np.integer):
        return float(np.iinfo(dtype).max)
    if np.issubdtype(dtype, np.floating):
        return 1.0
    raise TypeError(f"unsupported pixel dtype {dtype}")


def load(
    name: str,
    scale: int,
    device: str | torch.device = "cpu",
    weights: str | Path | None = None,
    *,
    tile: int | None = None,
    tta: bool = False,
    backend: str = "torch",
    budget: float | None = None,
) -> Upscaler:
    """Build a registered model for `scale` with its shipped weights (or `weights`, a
    safetensors file), ready to upscale. Learned models without weights are refused.

    `tile`: run images larger than `tile` LR pixels in blended tiles (bounded memory);
    `tta`: x8 geometric self-ensemble; `backend="onnx"`: run through ONNX Runtime (the
    model is exported once and cached); `budget`: seconds per image for models that train
    at test time (ZSSR, DIP).
    """
    from superres.models import get_model
    from superres.train.checkpoint import load_weights
    from superres.zoo import WeightsNotFoundError, checked_path, find_weights

    spec = get_model(name)
    spec.check_scale(scale)
    if spec.trains_at_test_time:
        if tta or backend != "torch":
            raise ValueError(f"{spec.name} learns from each input at test time: it has its own "
                             "self-ensemble and no fixed graph, so --tta and ONNX do not apply")
        tile = None  # it learns from the whole image's internal statistics
        model = spec.build(scale, time_budget=budget) if budget else spec.build(scale)
    else:
        model = spec.build(scale)
    if weights is not None:
        if not Path(weights).is_file():
            raise WeightsNotFoundError(f"weights file {weights} does not exist")
        load_weights(model, Path(weights))
    elif spec.learned:
        shipped = find_weights(spec.name, scale)
        if shipped is None:
            raise WeightsNotFoundError(_no_weights_message(spec.name, scale))
        load_weights(model, checked_path(shipped))
    model.eval()
    channels = {"y": 1, "rgb": 3, "any": None}[spec.color]
    pad = default_pad(model, channels or 1) if tile else None
    if backend == "onnx":
        from superres.export import OnnxRuntimeModel, cached_export

        model = OnnxRuntimeModel(cached_export(model, channels, f"{spec.name}_x{scale}"))
    elif backend == "torch":
        # oneDNN's convolutions run about 1.5x faster on NHWC tensors (measured on FSRCNN
        # and ESPCN at 512x512 on the CPU); the model's outputs are the same.
        model = model.to(memory_format=torch.channels_last)
    else:
        raise ValueError(f"backend must be torch or onnx, not {backend!r}")
    if tile:
        model = Tiled(model, scale, tile, pad=pad)
    if tta:
        model = SelfEnsemble(model)
    device = torch.device(device)
    return Upscaler(spec=spec, scale=scale, model=model.to(device), device=device)


def _no_weights_message(name: str, scale: int) -> str:
    """Say that a learned model has no weights, and how to get some."""
    from superres.train.recipe import load_recipe, shipped_recipes

    recipes = [recipe_name for recipe_name, path in shipped_recipes().items()
               if (load_recipe(path).model, load_recipe(path).scale) == (name, scale)]
    how = (f"train it (`superres train {recipes[0]}`)" if recipes
           else "train it with a recipe of your own")
    return (f"{name} x{scale} has no shipped weights: {how}, or convert the authors' "
            f"checkpoint (`superres convert`), and pass --weights FILE.safetensors")
