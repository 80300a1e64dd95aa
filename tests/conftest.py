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


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for modules of tiny-input model tests: threads gain nothing there
    and, on a busy 2-core machine, slow every call."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
