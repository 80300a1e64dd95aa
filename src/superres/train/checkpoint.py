"""Checkpoints and weights files written atomically, and read without unpickling code.

A run killed at any moment leaves either the previous file or the new one, never half of
one: each file is written beside its target, flushed to disk, then renamed over it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save
from torch import nn

from superres.files import atomic_write


def save_checkpoint(state: dict[str, Any], path: Path) -> Path:
    """Save a training state (tensors, numbers, strings; no objects) atomically."""
    return atomic_write(path, lambda f: torch.save(state, f))


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a training state with `weights_only=True`: no code in the file is ever run."""
    return torch.load(path, map_location="cpu", weights_only=True)


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
