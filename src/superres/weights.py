"""One home for weights: where they are looked up, how they are read and written.

- The user's weights folder, ``$SUPERRES_WEIGHTS`` (default ``~/.cache/superres/weights``),
  holds pretrained networks used by losses and metrics (VGG19, LPIPS, NIQE's model); nothing
  is downloaded into it at run time without being asked.
- The zoo, `superres/zoo/`, holds the weights superres ships: safetensors files listed in
  `index.json` with their sha256 (checked before loading) and the scores measured with
  `superres eval`. Shipping a run into it is `superres.train.release`.
- Files are read as tensors only: safetensors, or PyTorch files loaded with
  ``weights_only=True``, so nothing in a file is ever unpickled into code. Files are written
  atomically: a killed process leaves the old file or the new one, never half of one.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save
from torch import nn

from superres.files import atomic_write, cache_folder, file_digest

ENV_VAR = "SUPERRES_WEIGHTS"
ZOO = Path(__file__).resolve().parent / "zoo"
WEIGHTS_SUFFIXES = (".safetensors", ".pth", ".pt")

StateDict = Mapping[str, torch.Tensor]


class WeightsNotFoundError(FileNotFoundError):
    """A learned model was asked for without weights to load."""


# ----------------------------------------------------------------------------- user folder


def weights_root() -> Path:
    """``$SUPERRES_WEIGHTS`` if set, else ``(XDG_CACHE_HOME or ~/.cache)/superres/weights``."""
    return cache_folder(ENV_VAR, "weights")


def weights_origin() -> str:
    """Where `weights_root()` came from, for error messages."""
    if os.environ.get(ENV_VAR, "").strip():
        return f"${ENV_VAR}"
    return f"the default folder; ${ENV_VAR} is not set"


# ----------------------------------------------------------------------------- reading, writing


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The contents of a safetensors file, or of any other checkpoint (.pt, .pth, .pth.tar)
    read with `weights_only=True`: tensors in plain containers. A file holding other Python
    objects is refused and no code in it runs."""
    path = Path(path)
    if not path.is_file():
        raise WeightsNotFoundError(f"weights file {path} does not exist")
    if path.suffix.lower() == ".safetensors":
        return load_file(str(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        reason = next((line.strip() for line in str(err).splitlines() if "Unsupported" in line),
                      "it is not made of tensors and plain containers only")
        raise ValueError(
            f"{path.name} holds Python objects, not just tensors: refused without unpickling "
            f"them (refusing to unpickle what weights_only=True rejects: {reason})"
        ) from None
    if not isinstance(state, Mapping):
        raise ValueError(f"{path.name} holds a {type(state).__name__}, not a state dict")
    return dict(state)


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The tensors of a flat safetensors or PyTorch (.pth/.pt) state dict."""
    path = Path(path)
    if path.is_file() and path.suffix not in WEIGHTS_SUFFIXES:
        raise ValueError(f"{path.name}: weights must be {', '.join(WEIGHTS_SUFFIXES)}")
    state = read_checkpoint(path)
    if not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path.name} is not a state dict (a mapping of names to tensors)")
    return state


def save_weights(model: nn.Module, path: Path, metadata: dict[str, str] | None = None) -> Path:
    """Save a model's state dict as safetensors, atomically."""
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    return atomic_write(path, lambda f: f.write(save(tensors, metadata=metadata or {})))


def load_weights(model: nn.Module, path: Path, strict: bool = True) -> list[str]:
    """Load safetensors weights into `model`; with strict=False, skip tensors whose shapes
    differ and return their names (e.g. a scale-specific upsampler)."""
    tensors = load_file(str(path))
    own = model.state_dict()
    if strict:
        missing = sorted(set(own) - set(tensors))
        unexpected = sorted(set(tensors) - set(own))
        wrong = sorted(k for k in set(own) & set(tensors) if own[k].shape != tensors[k].shape)
        if missing or unexpected or wrong:
            raise ValueError(
                f"{path.name} does not fit {type(model).__name__}: missing {missing}, "
                f"unexpected {unexpected}, wrong shape {wrong}"
            )
        model.load_state_dict(tensors)
        return []
    skipped = sorted(k for k in own if k not in tensors or tensors[k].shape != own[k].shape)
    model.load_state_dict({k: v for k, v in tensors.items() if k not in skipped and k in own},
                          strict=False)
    return skipped


# ----------------------------------------------------------------------------- the zoo


@dataclass(frozen=True)
class ShippedWeights:
    """One shipped weights file and what it measured."""

    model: str
    scale: int
    file: str
    sha256: str
    recipe: str
    steps: int  # optimiser steps of the shipped (best-validation) weights
    train_hours: float  # wall-clock training time to those steps, on one CPU thread
    # dataset -> [PSNR, SSIM], measured with `superres eval` (Y channel, shave = scale)
    scores: dict[str, list[float]] = field(default_factory=dict)
    # the weights the run started from (the recipe's `init` and their sha256); train_hours
    # counts this run only, so a fine-tune's full cost adds its starting point's
    init: str = ""

    @property
    def path(self) -> Path:
        return ZOO / self.file


@cache
def shipped_weights() -> tuple[ShippedWeights, ...]:
    """Every entry of the zoo's index."""
    index = ZOO / "index.json"
    if not index.exists():
        return ()
    return tuple(ShippedWeights(**entry) for entry in json.loads(index.read_text()))


def find_weights(model: str, scale: int) -> ShippedWeights | None:
    """The shipped weights of `model` at `scale`, if any."""
    return next((w for w in shipped_weights() if w.model == model and w.scale == scale), None)


def checked_path(weights: ShippedWeights) -> Path:
    """The weights file, after checking that it is there and has the recorded sha256."""
    if not weights.path.exists():
        raise WeightsNotFoundError(f"{weights.path.name} is missing from the installation")
    actual = file_digest(weights.path)
    if actual != weights.sha256:
        raise ValueError(
            f"{weights.path.name} is corrupt: sha256 {actual}, expected {weights.sha256}"
        )
    return weights.path


def add_shipped(entry: ShippedWeights, source: Path) -> ShippedWeights:
    """Copy `source` into the zoo as `entry.file` and record `entry` (with the copy's
    sha256) in index.json, replacing an older entry for the same model and scale."""
    target = ZOO / entry.file
    atomic_write(target, lambda f: f.write(source.read_bytes()))
    entry = dataclasses.replace(entry, sha256=file_digest(target))
    entries = [w for w in shipped_weights() if (w.model, w.scale) != (entry.model, entry.scale)]
    entries = sorted([*entries, entry], key=lambda w: (w.model, w.scale))
    index = json.dumps([dataclasses.asdict(w) for w in entries], indent=1) + "\n"
    atomic_write(ZOO / "index.json", lambda f: f.write(index.encode()))
    shipped_weights.cache_clear()
    return entry
