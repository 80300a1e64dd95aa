"""Shared fixtures: where the standard datasets are (tests needing them skip without)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def _data_root() -> Path | None:
    root = os.environ.get("SUPERRES_DATA")
    return Path(root) if root and Path(root).is_dir() else None


def _require(name: str) -> Path:
    root = _data_root()
    if root is None:
        pytest.skip("SUPERRES_DATA is not set to a folder of datasets")
    folder = root / name
    if not folder.is_dir():
        pytest.skip(f"{name} is not in SUPERRES_DATA ({root}); `superres datasets download {name}`")
    return folder


@pytest.fixture
def require_dataset():
    """A function: the folder of a standard set, or skip the test saying how to provide it."""
    return _require
