"""File helpers shared by images, datasets, checkpoints and weights: which files are
images, content digests, and writes that never leave half a file behind."""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
)


def is_image_file(path: Path) -> bool:
    """A visible file with an image suffix."""
    suffix, hidden = path.suffix.lower(), path.name.startswith(".")
    return suffix in IMAGE_SUFFIXES and not hidden and path.is_file()


def list_images(folder: Path) -> list[Path]:
    """Image files directly in `folder`, sorted by name; hidden files are skipped."""
    return sorted(p for p in folder.iterdir() if is_image_file(p))


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes, read in chunks: archives need not fit in memory."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> Path:
    """Write `path` through `write(file)` into a hidden temporary file beside it, flush it
    to disk, then rename it over `path`: a kill at any moment leaves the old file or the new
    one, never half of one. Creates parent folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Hidden and without an image suffix, so a leftover is never taken for an input.
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(temporary, "xb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path
