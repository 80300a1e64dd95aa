"""VGG feature extractor for perceptual losses and metrics: torchvision's `features` layout
(VGG16, VGG19), ImageNet weights read from files, frozen.

Perceptual losses mean something only with trained features, so the weights come from a file:
given explicitly, or found in the folder ``$SUPERRES_WEIGHTS``. Random weights exist only when
asked for with ``pretrained=False``, to test wiring; a missing file is an error, never a silent
fallback. Files are safetensors, or PyTorch ``.pth`` read with ``weights_only=True`` (nothing in
a file is ever unpickled into code).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path

import torch
from torch import nn

from superres.weights import (
    WEIGHTS_SUFFIXES,
    StateDict,
    WeightsNotFoundError,
    read_state_dict,
    weights_origin,
    weights_root,
)

# torchvision's configurations "D" (VGG16) and "E" (VGG19): a number is a 3x3 convolution with
# that many output channels (each followed by a ReLU), "M" a 2x2 max-pool.
_CONFIGS: dict[str, tuple[int | str, ...]] = {
    "vgg16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M",
              512, 512, 512, "M", 512, 512, 512, "M"),
    "vgg19": (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
              512, 512, 512, 512, "M", 512, 512, 512, 512, "M"),
}  # fmt: skip

# torchvision's ImageNet weights. As in torch.hub, the hex after the dash in a file name is the
# first 8 hex digits of the file's sha256 (vgg19-dcbb9e9d.pth: sha256 starts with dcbb9e9d).
WEIGHTS_URLS: dict[str, str] = {
    "vgg16": "https://download.pytorch.org/models/vgg16-397923af.pth",
    "vgg19": "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
}
VGG19_URL = WEIGHTS_URLS["vgg19"]

# The statistics the ImageNet weights were trained with, for RGB in [0, 1].
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_FEATURE_KEY = re.compile(r"features\.(\d+)\.(weight|bias)")

WeightsSource = str | os.PathLike[str] | StateDict


def _config(arch: str) -> tuple[int | str, ...]:
    if arch not in _CONFIGS:
        raise ValueError(f"unknown VGG {arch!r}; choose from {', '.join(_CONFIGS)}")
    return _CONFIGS[arch]


@cache
def layer_names(arch: str = "vgg19") -> tuple[str, ...]:
    """Names of torchvision's `features` layers in index order (conv1_1, relu1_1, ..., pool5),
    so that `layer_names()[i]` is the layer `vgg19().features[i]`."""
    names: list[str] = []
    block, conv = 1, 1
    for item in _config(arch):
        if item == "M":
            names.append(f"pool{block}")
            block, conv = block + 1, 1
        else:
            names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
            conv += 1
    return tuple(names)


def layer_index(name: str, arch: str = "vgg19") -> int:
    """The index in torchvision's `features` of the layer called `name`."""
    names = layer_names(arch)
    if name not in names:
        raise ValueError(f"{arch} has no layer {name!r}; its layers are {', '.join(names)}")
    return names.index(name)


@cache
def _conv_shapes(arch: str) -> dict[int, tuple[int, int]]:
    """Feature index of each convolution -> (output channels, input channels)."""
    shapes: dict[int, tuple[int, int]] = {}
    index, channels = 0, 3
    for item in _config(arch):
        if item == "M":
            index += 1
        else:
            shapes[index] = (int(item), channels)
            index, channels = index + 2, int(item)
    return shapes


def _build_layers(arch: str, depth: int) -> nn.Sequential:
    """torchvision's `features[:depth]`, with ReLUs that are not in place so that a
    convolution's output (ESRGAN's conv5_4) survives the ReLU after it."""
    layers: list[nn.Module] = []
    channels = 3
    for item in _config(arch):
        if len(layers) >= depth:
            break
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(channels, int(item), kernel_size=3, padding=1), nn.ReLU()]
            channels = int(item)
    return nn.Sequential(*layers[:depth])


# ----------------------------------------------------------------------------- weights files


def official_file_name(arch: str = "vgg19") -> str:
    """torchvision's file name for `arch`, e.g. vgg19-dcbb9e9d.pth."""
    _config(arch)
    return WEIGHTS_URLS[arch].rsplit("/", 1)[1]


def find_vgg_weights(arch: str = "vgg19") -> Path:
    """The ImageNet weights of `arch` in the weights folder: torchvision's file (or a
    safetensors copy of the same name) first, then any other `<arch>-*`/`<arch>_*` file
    (a truncated copy), but never a batch-norm variant."""
    root = weights_root()
    official = root / official_file_name(arch)
    candidates = [official, official.with_suffix(".safetensors")]
    if root.is_dir():
        pattern = re.compile(rf"{arch}[-_](?!bn).*")
        candidates += sorted(
            p for p in root.iterdir() if p.suffix in WEIGHTS_SUFFIXES and pattern.fullmatch(p.stem)
        )
    for path in candidates:
        if path.is_file():
            return path
    prefix = official.stem.split("-")[1]
    raise WeightsNotFoundError(
        f"no {arch} ImageNet weights in {root} (from {weights_origin()}): looked for "
        f"{official.name} or another {arch}-*/{arch}_* .safetensors/.pth file. Perceptual "
        "losses and metrics need trained features, so none are made up. With internet, put "
        f"torchvision's file {WEIGHTS_URLS[arch]} there (superres.nn.vgg.download_vgg_weights"
        f"('{arch}') does, checking that the file's sha256 starts with {prefix}: as in "
        "torch.hub, the hex in the name is the first 8 hex digits of its sha256)."
    )


def download_vgg_weights(arch: str = "vgg19", folder: Path | None = None) -> Path:
    """Fetch torchvision's ImageNet weights of `arch` into `folder` (default: the weights
    folder), refusing a file whose sha256 does not start with the hex in its name."""
    name = official_file_name(arch)
    target = (folder if folder is not None else weights_root()) / name
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        prefix = Path(name).stem.split("-")[1]
        # Writes to a temporary file beside `target` and renames it only once the hash matches.
        torch.hub.download_url_to_file(WEIGHTS_URLS[arch], str(target), hash_prefix=prefix)
    return target


def _feature_tensors(state: StateDict, arch: str, source: str) -> dict[str, torch.Tensor]:
    """The `features.N.*` tensors of a torchvision state dict, checked against `arch`;
    `classifier.*` tensors are ignored."""
    shapes = _conv_shapes(arch)
    found: dict[str, torch.Tensor] = {}
    unexpected: list[str] = []
    for key, tensor in state.items():
        if key.startswith("classifier."):
            continue
        match = _FEATURE_KEY.fullmatch(key)
        if match is None or int(match[1]) not in shapes:
            unexpected.append(key)
            continue
        out_channels, in_channels = shapes[int(match[1])]
        expected = (out_channels, in_channels, 3, 3) if match[2] == "weight" else (out_channels,)
        if tuple(tensor.shape) != expected:
            raise ValueError(
                f"{source}: {key} has shape {tuple(tensor.shape)}; {arch} needs {expected}"
            )
        found[key] = tensor
    if unexpected:
        raise ValueError(
            f"{source} is not a torchvision {arch} state dict: unexpected keys "
            f"{', '.join(sorted(unexpected)[:5])}{', ...' if len(unexpected) > 5 else ''}"
        )
    return found


def _loaded_depth(tensors: StateDict, arch: str) -> int:
    """How many leading layers the tensors cover: up to the first convolution they lack."""
    for index, name in enumerate(layer_names(arch)):
        has_conv = f"features.{index}.weight" in tensors and f"features.{index}.bias" in tensors
        if name.startswith("conv") and not has_conv:
            return index
    return len(layer_names(arch))


# ----------------------------------------------------------------------------- the extractor


class VGGFeatures(nn.Module):
    """Activations of chosen VGG layers for RGB images in [0, 1] (ImageNet normalisation is
    done inside); frozen and always in eval mode.

    `convB_N` is a convolution's output before its ReLU (ESRGAN's conv5_4), `reluB_N` after it
    (SRGAN's VGG5,4 is relu5_4), `poolB` after a max-pool. Only the layers up to the deepest
    requested one are built and loaded. `weights` is a file or a state dict in torchvision's
    layout, full or truncated; None looks in the weights folder (`find_vgg_weights`).
    """

    def __init__(
        self,
        layers: Sequence[str],
        weights: WeightsSource | None = None,
        *,
        pretrained: bool = True,
        arch: str = "vgg19",
    ) -> None:
        super().__init__()
        names = (layers,) if isinstance(layers, str) else tuple(dict.fromkeys(layers))
        if not names:
            raise ValueError("ask for at least one layer")
        self.arch = arch
        self.layers = names
        self._indices = {name: layer_index(name, arch) for name in names}
        depth = max(self._indices.values()) + 1
        self.features = _build_layers(arch, depth)
        if pretrained:
            self.weights_source = self._load(weights, depth)
        elif weights is not None:
            raise ValueError("weights were given with pretrained=False; pass one or the other")
        else:
            self.weights_source = "random (pretrained=False)"
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def _load(self, weights: WeightsSource | None, depth: int) -> str:
        """Load the first `depth` layers; returns where the weights came from."""
        if isinstance(weights, Mapping):
            state, source = weights, "the given state dict"
        else:
            path = Path(weights) if weights is not None else find_vgg_weights(self.arch)
            state, source = read_state_dict(path), str(path)
        tensors = _feature_tensors(state, self.arch, source)
        available = _loaded_depth(tensors, self.arch)
        names = layer_names(self.arch)
        if available == 0:
            raise ValueError(f"{source} holds no {self.arch} features (no conv1_1)")
        if depth > available:
            deepest = max(self._indices, key=self._indices.__getitem__)
            raise ValueError(
                f"{deepest} is deeper than the weights in {source}: they hold {names[0]} to "
                f"{names[available - 1]}, so the deepest available layer is "
                f"{names[available - 1]}. torchvision's full weights ({WEIGHTS_URLS[self.arch]}) "
                "hold every layer."
            )
        own = self.features.state_dict()
        self.features.load_state_dict({k: tensors[f"features.{k}"] for k in own})
        return source

    def train(self, mode: bool = True) -> VGGFeatures:
        """Stay in eval mode whatever a parent module is switched to: the features are fixed."""
        return super().train(False)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """The requested layers' activations, by name."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(
                f"expected RGB images shaped (N, 3, H, W) in [0, 1], got {tuple(images.shape)}"
            )
        wanted = {index: name for name, index in self._indices.items()}
        found: dict[str, torch.Tensor] = {}
        x = (images - self.mean) / self.std
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in wanted:
                found[wanted[index]] = x
        return {name: found[name] for name in self.layers}
