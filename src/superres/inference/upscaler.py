"""A loaded model ready to upscale images of any kind and size: what `superres.load` returns.

It knows its scale and colour space, so callers never guess: Y-channel models (SRCNN,
FSRCNN, ...) get the BT.601 Y channel and the chroma is upscaled with bicubic, as in
their papers; alpha is always upscaled separately with bicubic. Images go through
`superres.inference.streaming` tile by tile into a preallocated output, so memory is bounded by
the tile (or by `max_memory`), and a tile that runs out of memory is retried smaller.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from PIL import Image as PILImage
from torch import nn

from superres.image.io import Picture, from_pil, to_pil, write_image
from superres.image.rows import ROW_FORMATS, write_rows
from superres.inference.filesink import RowSink
from superres.inference.fused import FusedChain
from superres.inference.memory import bytes_per_pixel, is_out_of_memory, largest_tile, parse_size
from superres.inference.precision import PRECISIONS, half_model
from superres.inference.streaming import ChannelRoute, Sink, Streamer
from superres.inference.tiles import SelfEnsemble, tile_context
from superres.models import get_model
from superres.models.registry import Color, ModelSpec
from superres.nn.upsamplers import Interpolate
from superres.weights import (
    WeightsNotFoundError,
    build_options,
    checked_path,
    find_weights,
    load_weights,
)

ImageLike = TypeVar("ImageLike", np.ndarray, torch.Tensor, PILImage.Image, Picture)

_BATCH_PIXELS = 512 * 512  # images are batched while the batch holds at most this many
_MIN_OWNED = 16  # LR pixels a tile keeps beyond its context, at the least
_FIXED_BYTES = 32 * 2**20  # finishing buffers and the like of a tile, whatever its size
# Outputs of at least this many pixels are written to the file as their tiles finish
# (`Upscaler.upscale_to_file`): below it, the whole-image path is as fast and memory is small.
STREAM_PIXELS = 2**25


@dataclass
class Upscaler:
    """A model built for one scale, in eval mode on one device.

    `tile`: LR tile side (None: the whole image in one piece); `batch`: how many images of
    one size may run together; `max_memory`: bytes (or a size like "2GB") of working memory
    to fit the tiles in; `precision`: float32, float16 or bfloat16 (checked, see
    `superres.inference.precision`).
    """

    spec: ModelSpec
    scale: int
    model: nn.Module
    device: torch.device
    tile: int | None = None
    batch: int = 8
    max_memory: int | str | None = None
    precision: str = "float32"

    def __post_init__(self) -> None:
        if self.tile is not None and self.tile < 1:
            raise ValueError(f"tile must be a positive number of pixels, not {self.tile}")
        if self.batch < 1:
            raise ValueError(f"batch must be at least 1, not {self.batch}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, "
                             f"not {self.precision!r}")
        if self.max_memory is not None:
            self.max_memory = parse_size(self.max_memory)
        # Chroma and alpha: MATLAB bicubic, as the exact (and fast) polyphase convolution.
        self.bicubic = Interpolate(self.scale).to(self.device)
        self.dtype = torch.float32
        self._context: tuple[int, int] | None = None
        if self.precision != "float32":
            self._tile_context()  # measured in float32, before the model changes precision
            half = half_model(self.model, PRECISIONS[self.precision], self._net_channels(3),
                              self.device)
            if half is not None:
                self.model, self.dtype = half, PRECISIONS[self.precision]
        fast = self.device.type == "cpu" and self.dtype == torch.float32
        self._fused = FusedChain.compile(self.model) if fast else None
        self._bytes_per_pixel: dict[int, float] = {}
        self._tile_cap: int | None = None  # lowered when a tile runs out of memory

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def color(self) -> Color:
        return self.spec.color

    def upscale(self, image: ImageLike | list[ImageLike]) -> ImageLike | list[ImageLike]:
        """Upscale a PIL image, a Picture, a NumPy array or a torch tensor; same kind back.
        A list of images gives a list back; images of one size and kind run in batches.

        NumPy: H x W or H x W x C (C = 1 to 4), uint8/uint16 or float in [0, 1].
        torch: C x H x W or N x C x H x W float in [0, 1].
        A 2nd (gray) or 4th (RGB) channel is alpha.
        """
        if isinstance(image, list | tuple):
            return self._upscale_list(list(image))
        if isinstance(image, Picture):
            return self.upscale_picture(image)
        if isinstance(image, PILImage.Image):
            return self._upscale_pil(image)
        if isinstance(image, np.ndarray):
            return self._upscale_arrays([image])[0]
        if isinstance(image, torch.Tensor):
            return self._upscale_tensor(image)
        raise TypeError(f"cannot upscale a {type(image).__name__}")

    def run(self, x: torch.Tensor) -> torch.Tensor:
        """N x C x H x W float in [0, 1] (C = 1 or 3) -> upscaled, clamped to [0, 1]."""
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"expected N x C x H x W with C = 1 or 3, got {tuple(x.shape)}")
        return self._upscale_tensor(x.float())

    def upscale_picture(self, picture: Picture) -> Picture:
        """Upscale colour and alpha of a decoded image, keeping its bit depth."""
        return self._upscale_pictures([picture])[0]

    def upscale_to_file(self, picture: Picture, path: str | Path, *, quality: int = 95,
                        stream: bool | None = None) -> Path:
        """Upscale a decoded image into the file `path` names (its suffix the format),
        atomically, as `write_image` writes. An 8-bit gray or RGB image without alpha going
        to PNG, TIFF or JPEG can be streamed: written a band of rows at a time as its tiles
        finish, so that the output never exists whole in memory, into the file the
        whole-image path writes. `stream=None` streams outputs of `STREAM_PIXELS` or more;
        True and False force either path."""
        width, height = picture.width * self.scale, picture.height * self.scale
        plain = picture.alpha is None and picture.bit_depth == 8
        streamable = plain and Path(path).suffix.lower() in ROW_FORMATS
        if stream is None:
            stream = streamable and width * height >= STREAM_PIXELS
        if not stream:  # 8-bit gray and RGB are painted into the Pillow image that is saved
            result = self.upscale(to_pil(picture) if plain else picture)
            return write_image(path, result, quality=quality)
        if not streamable:
            raise ValueError(f"{path}: only 8-bit gray or RGB images without alpha are written "
                             f"a band at a time, to {', '.join(sorted(ROW_FORMATS))}")
        pixels = picture.pixels if picture.pixels.flags.writeable else picture.pixels.copy()
        src = torch.from_numpy(pixels[None])
        return write_rows(path, width, height, picture.channels,
                          lambda writer: self._stream(src, RowSink(writer)), quality=quality)

    def _upscale_pil(self, image: PILImage.Image) -> PILImage.Image:
        """8-bit gray and RGB are painted straight into the output Pillow image, region by
        region: Pillow keeps RGB as 4 bytes a pixel, and without a NumPy output besides it
        this is the only full-size copy of the result. Other modes go through a Picture."""
        picture = from_pil(image)
        mode = {1: "L", 3: "RGB"}.get(picture.channels)
        if picture.alpha is not None or picture.bit_depth != 8 or mode is None:
            return to_pil(self.upscale_picture(picture))
        canvas = _PillowCanvas(mode, picture.width * self.scale, picture.height * self.scale)
        self._stream(torch.from_numpy(picture.pixels[None]), canvas)
        return canvas.image

    def _upscale_list(self, images: list[Any]) -> list[Any]:
        """Upscale images one kind at a time, batching pictures and arrays of one size."""
        if all(isinstance(i, Picture) for i in images):
            return self._upscale_pictures(images)
        if all(isinstance(i, PILImage.Image) for i in images):
            if len(images) == 1:
                return [self._upscale_pil(images[0])]
            pictures = self._upscale_pictures([from_pil(i) for i in images])
            return [to_pil(p) for p in pictures]
        if all(isinstance(i, np.ndarray) for i in images):
            return self._upscale_arrays(images)
        return [self.upscale(i) for i in images]

    def _upscale_pictures(self, pictures: list[Picture]) -> list[Picture]:
        merged = [p.pixels if p.alpha is None else np.dstack([p.pixels, p.alpha])
                  for p in pictures]
        results = []
        for picture, out in zip(pictures, self._upscale_arrays(merged), strict=True):
            colour = picture.channels
            results.append(Picture(pixels=out[..., :colour],
                                   alpha=None if picture.alpha is None else out[..., colour],
                                   source=picture.source, format=picture.format))
        return results

    def _upscale_arrays(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        """Upscale H x W or H x W x C arrays (C = 1..4), batching runs of one shape."""
        for array in arrays:
            _check_array(array)
        results: list[np.ndarray] = []
        start = 0
        while start < len(arrays):
            first = arrays[start]
            end = start + 1
            size = self.batch_size(first.shape[0], first.shape[1])
            while (end < len(arrays) and end - start < size and arrays[end].shape == first.shape
                   and arrays[end].dtype == first.dtype):
                end += 1
            results.extend(self._upscale_batch(arrays[start:end]))
            start = end
        return results

    def batch_size(self, height: int, width: int) -> int:
        """How many images of this size run through the network together: up to `batch`,
        while the batch holds no more pixels than one tile (or 512 x 512), so that batching
        speeds up small images and never raises the memory a large one needs."""
        limit = max(_BATCH_PIXELS, (self.tile or 0) ** 2)
        return max(1, min(self.batch, limit // max(1, height * width)))

    def _upscale_batch(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        """Same-shape arrays in one run: stacked, upscaled into one preallocated output."""
        squeeze = arrays[0].ndim == 2
        batch = np.stack(arrays) if len(arrays) > 1 else arrays[0][None]
        if not batch.flags.writeable:  # e.g. np.asarray(a PIL image); torch wants writable
            batch = batch.copy()
        batch = batch[..., None] if squeeze else batch
        n, height, width, channels = batch.shape
        out = np.empty((n, height * self.scale, width * self.scale, channels), batch.dtype)
        colour = 3 if channels >= 3 else 1
        self._stream(torch.from_numpy(batch[..., :colour]), torch.from_numpy(out[..., :colour]))
        if channels in (2, 4):  # the last channel is alpha
            self._stream(torch.from_numpy(batch[..., colour:]),
                         torch.from_numpy(out[..., colour:]), alpha=True)
        return [image[..., 0] if squeeze else image for image in out]

    def _upscale_tensor(self, x: torch.Tensor) -> torch.Tensor:
        batched = x.ndim == 4
        x = x if batched else x[None]
        if x.ndim != 4 or not x.is_floating_point():
            raise ValueError("expected a float tensor C x H x W or N x C x H x W in [0, 1]")
        n, channels, height, width = x.shape
        if channels not in (1, 2, 3, 4):
            raise ValueError(f"expected 1 to 4 channels, got {channels}")
        _check_size(height, width)
        out = x.new_empty((n, channels, height * self.scale, width * self.scale))
        src, target = x.permute(0, 2, 3, 1), out.permute(0, 2, 3, 1)
        colour = 3 if channels >= 3 else 1
        self._stream(src[..., :colour], target[..., :colour])
        if channels in (2, 4):
            self._stream(src[..., colour:], target[..., colour:], alpha=True)
        return out if batched else out[0]

    def _stream(self, src: torch.Tensor, out: torch.Tensor | Sink, alpha: bool = False) -> None:
        """Upscale N x H x W x C into `out`; on running out of memory, halve the tile and
        start again (the output is written anew), down to the smallest useful tile."""
        while True:
            tile = self._tile_for(src.shape, alpha)
            try:
                self._streamer(src.shape[-1], tile, alpha).run(src, out)
                return
            except (RuntimeError, MemoryError) as err:
                if not is_out_of_memory(err):
                    raise
                self._tile_cap = self._smaller_tile(tile, src.shape, err)
                if not isinstance(out, torch.Tensor):
                    out.restart()

    def _streamer(self, channels: int, tile: int | None, alpha: bool) -> Streamer:
        if alpha:  # bicubic, whose context is its kernel's reach
            return Streamer(self.bicubic.phase_planes, self.scale, "direct", tile, 3, 0,
                            device=self.device)
        pad, blend = self._tile_context()
        # A model that trains at test time is one job on the whole image: split across
        # workers, its halves would each train the one shared network at once.
        workers = 1 if self.spec.trains_at_test_time else None
        return Streamer(self._network(channels), self.scale, self._route(channels), tile, pad,
                        blend, device=self.device, dtype=self.dtype, workers=workers)

    def _route(self, channels: int) -> ChannelRoute:
        if self.color == "y" and channels == 3:
            return "luma"
        return "mean" if self.color == "rgb" and channels == 1 else "direct"

    def _net_channels(self, channels: int) -> int:
        """Channels the network sees for an image with `channels` colour channels."""
        return {"y": 1, "rgb": 3}.get(self.color, channels)

    def _network(self, channels: int) -> Any:
        """The callable to run on tiles: where it can, one that returns phase planes, so
        that the colour is finished before the pixel shuffle."""
        fused, model = self._fused, self.model
        if fused is not None and fused.shuffle is not None:
            out_channels = self._net_channels(channels)
            return lambda x: fused.phases(x).unflatten(1, (out_channels, -1))
        if isinstance(model, Interpolate) and model.phases is not None:
            return model.phase_planes
        return fused or model

    def _tile_context(self) -> tuple[int, int]:
        """(pad, blend) of this model's tiles, measured once."""
        if self._context is None:
            if self.spec.trains_at_test_time:
                self._context = (0, 0)  # never tiled: it learns from the whole image
            else:
                self._context = tile_context(self._torch_network(), self._net_channels(1))
        return self._context

    def _tile_for(self, shape: torch.Size, alpha: bool) -> int | None:
        """The tile side for an N x H x W x C input: the given tile, or the largest that
        fits the memory budget, and never above a size that ran out of memory."""
        height, width = shape[1], shape[2]
        _check_size(height, width)
        if self.spec.trains_at_test_time:
            return None
        tile = self.tile
        if self.max_memory is not None and not alpha:
            pad, blend = self._tile_context()
            budget_tile = largest_tile(int(self.max_memory), self._cost(shape),
                                       2 * pad + blend + _MIN_OWNED, max(height, width))
            tile = budget_tile if tile is None else min(tile, budget_tile)
        if self._tile_cap is not None:
            tile = self._tile_cap if tile is None else min(tile, self._tile_cap)
        return None if tile is None or tile >= max(height, width) else tile

    def _cost(self, shape: torch.Size) -> Any:
        """Estimated working bytes of a tile side: the network's activations (measured) and
        the LR tile as floats, for each tile in flight (one per thread when tiles are cut,
        one when they are blended), the blended bands of deep models, and fixed buffers."""
        n, height, width, channels = shape
        net_channels = self._net_channels(channels)
        per_pixel = self._activation_bytes(net_channels) + 4 * channels
        _, blend = self._tile_context()
        band = 2 * n * net_channels * width * self.scale**2 * 4 if blend else 0
        in_flight = 1 if blend else torch.get_num_threads()

        def cost(tile: int) -> float:
            rows = min(tile, height)
            per_tile = n * rows * min(tile, width) * per_pixel + _FIXED_BYTES
            return in_flight * per_tile + band * rows

        return cost

    def _activation_bytes(self, channels: int) -> float:
        """Activation bytes per LR pixel of the network, measured on a probe once."""
        if channels not in self._bytes_per_pixel:
            net = self._torch_network() if _is_onnx(self.model) else self._network(channels)
            self._bytes_per_pixel[channels] = bytes_per_pixel(net, channels, self.dtype,
                                                              self.device)
        return self._bytes_per_pixel[channels]

    def _torch_network(self) -> nn.Module:
        """The network as PyTorch runs it; for ONNX Runtime, the same architecture (its
        receptive field and memory do not depend on the weights)."""
        return self.spec.build(self.scale).eval() if _is_onnx(self.model) else self.model

    def _smaller_tile(self, tile: int | None, shape: torch.Size, err: BaseException) -> int:
        """Half the tile that ran out of memory, or a clear error below the smallest."""
        pad, blend = self._tile_context()
        smallest = 2 * pad + blend + _MIN_OWNED
        current = tile or max(shape[1], shape[2])
        if current // 2 < smallest or self.spec.trains_at_test_time:
            raise MemoryError(f"out of memory even with {current}-pixel tiles (the smallest "
                              f"for {self.name} is {smallest}): {err}") from err
        warnings.warn(f"out of memory with {current}-pixel tiles; retrying with "
                      f"{current // 2}-pixel tiles", stacklevel=4)
        return current // 2


class _PillowCanvas:
    """An 8-bit gray or RGB Pillow image that the streamer paints region by region."""

    def __init__(self, mode: str, width: int, height: int) -> None:
        self.image = PILImage.new(mode, (width, height))
        self.shape = (1, height, width, len(mode))
        self.dtype = torch.uint8

    def write(self, top: int, left: int, pixels: torch.Tensor) -> None:
        region = pixels[0].numpy()
        region = region[..., 0] if self.image.mode == "L" else region
        self.image.paste(PILImage.fromarray(region, self.image.mode), (left, top))

    def restart(self) -> None:
        """Nothing to forget: every pixel is painted again."""


def _is_onnx(model: nn.Module) -> bool:
    from superres.inference.onnx import OnnxRuntimeModel

    inner = model.model if isinstance(model, SelfEnsemble) else model
    return isinstance(inner, OnnxRuntimeModel)


def _check_array(array: np.ndarray) -> None:
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 2, 3, 4)):
        raise ValueError(f"expected H x W or H x W x C with C in 1..4, got {array.shape}")
    if array.dtype.kind not in "uif":
        raise TypeError(f"unsupported pixel dtype {array.dtype}")
    _check_size(array.shape[0], array.shape[1])


def _check_size(height: int, width: int) -> None:
    if min(height, width) < 1:
        raise ValueError(f"cannot upscale an empty image ({width}x{height})")


def _available_device(name: str | torch.device) -> torch.device:
    """The device, checked by placing an empty tensor on it: a misspelt name or a device
    this PyTorch build or machine lacks is a ValueError now, not an error deep in a run."""
    try:
        device = torch.device(name)
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError) as err:  # CUDA missing from the build asserts
        raise ValueError(f"device {str(name)!r} is not available: {err}") from None
    return device


class NoShippedWeights(WeightsNotFoundError):
    """A learned model was asked for at a scale superres ships no weights for."""

    def __init__(self, model: str, scale: int, how: str = "train it with a recipe") -> None:
        self.model, self.scale = model, scale
        super().__init__(f"{model} x{scale} has no shipped weights: {how}, or convert the "
                         "authors' checkpoint (`superres convert`), and pass --weights "
                         "FILE.safetensors")


def _build_for(spec: ModelSpec, scale: int, weights: str | Path | None) -> nn.Module:
    """`spec`'s network for `scale`, built with the options a weights file records (the
    sizes and test-time conventions of a converted release)."""
    if weights is None:
        return spec.build(scale)
    options = build_options(Path(weights))
    try:
        return spec.build(scale, **options)
    except TypeError:
        raise ValueError(f"{Path(weights).name} records build options {options} that "
                         f"{spec.name} does not take: it holds another model's weights") from None


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
    max_memory: int | str | None = None,
    precision: str = "float32",
    batch: int = 8,
) -> Upscaler:
    """Build a registered model for `scale` with its shipped weights (or `weights`, a
    safetensors file), ready to upscale. Learned models without weights are refused.

    `tile`: run images larger than `tile` LR pixels in tiles (bounded memory);
    `max_memory`: choose the tile so that the working memory fits, e.g. "2GB"; `tta`: x8
    geometric self-ensemble; `backend="onnx"`: run through ONNX Runtime (the model is
    exported once and cached); `budget`: seconds per image for models that train at test
    time (ZSSR, DIP); `precision`: "float16" or "bfloat16" where checked safe; `batch`:
    how many small images of one size run together.
    """
    spec = get_model(name)
    spec.check_scale(scale)
    if weights is not None and not Path(weights).is_file():
        raise WeightsNotFoundError(f"weights file {weights} does not exist")
    if weights is not None and spec.learned and not spec.trains_at_test_time:
        from superres.models.convert.families import prepared_weights

        weights = prepared_weights(weights, spec.name, scale)  # any convertible checkpoint
    if spec.trains_at_test_time:
        if tta or backend != "torch" or max_memory is not None or precision != "float32":
            raise ValueError(f"{spec.name} learns from each input at test time: it has its own "
                             "self-ensemble, no fixed graph and the whole image in memory, and "
                             "trains in float32, so --tta, ONNX, --max-memory and --half do "
                             "not apply")
        if budget is not None and budget <= 0:
            raise ValueError(f"the time budget must be a positive number of seconds, not {budget}")
        tile = None  # it learns from the whole image's internal statistics
        model = spec.build(scale, time_budget=budget) if budget else spec.build(scale)
    else:
        model = _build_for(spec, scale, weights)
    if weights is not None:
        load_weights(model, Path(weights))
    elif spec.learned:
        shipped = find_weights(spec.name, scale)
        if shipped is None:
            raise NoShippedWeights(spec.name, scale)
        load_weights(model, checked_path(shipped))
    model.eval()
    channels = {"y": 1, "rgb": 3, "any": None}[spec.color]
    if backend == "onnx":
        if precision != "float32":
            raise ValueError("half precision runs with the torch backend only")
        from superres.inference.onnx import OnnxRuntimeModel, cached_export

        # Exactly cut tiles run on one-thread workers (see superres.inference.streaming), so each
        # session call gets one thread then; blended tiles run one at a time on all threads.
        cut = tile_context(model, channels or 1)[1] == 0
        model = OnnxRuntimeModel(cached_export(model, channels, f"{spec.name}_x{scale}"),
                                 threads=1 if cut else None)
    elif backend == "torch":
        # oneDNN's convolutions run about 1.5x faster on NHWC tensors (measured on FSRCNN
        # and ESPCN at 512x512 on the CPU); the model's outputs are the same.
        model = model.to(memory_format=torch.channels_last)
    else:
        raise ValueError(f"backend must be torch or onnx, not {backend!r}")
    if tta:
        model = SelfEnsemble(model)
    device = _available_device(device)
    return Upscaler(spec=spec, scale=scale, model=model.to(device), device=device, tile=tile,
                    batch=batch, max_memory=max_memory, precision=precision)
