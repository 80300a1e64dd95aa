"""Training checkpoints written atomically, and read without unpickling code.

A run killed at any moment leaves either the previous file or the new one, never half of
one: each file is written beside its target, flushed to disk, then renamed over it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from superres.files import atomic_write


def save_checkpoint(state: dict[str, Any], path: Path) -> Path:
    """Save a training state (tensors, numbers, strings; no objects) atomically."""
    return atomic_write(path, lambda f: torch.save(state, f))


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a training state with `weights_only=True`: no code in the file is ever run."""
    return torch.load(path, map_location="cpu", weights_only=True)
