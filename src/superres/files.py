"""File helpers shared by images, datasets, checkpoints and weights: which files are
images, content digests, writes that never leave half a file behind, and the cache folders
that hold datasets and weights."""

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


def cache_folder(env_var: str, name: str) -> Path:
    """``$env_var`` if set, else ``(XDG_CACHE_HOME or ~/.cache)/superres/name``: where the user
    keeps datasets and pretrained weights."""
    env = os.environ.get(env_var, "").strip()
    if env:
        return Path(env).expanduser()
    cache_home = os.environ.get("XDG_CACHE_HOME", "").strip()
    # The XDG spec says relative values are invalid and must be ignored.
    absolute = cache_home and Path(cache_home).is_absolute()
    base = Path(cache_home) if absolute else Path.home() / ".cache"
    return base / "superres" / name
