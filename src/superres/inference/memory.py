"""Memory budgets for upscaling: sizes such as "2GB", a network's activation memory per
input pixel measured on a small probe, the largest tile that fits a budget, and
out-of-memory errors recognised wherever they come from (PyTorch on CPU or GPU, NumPy,
ONNX Runtime), so that a run can retry with smaller tiles instead of failing.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

_UNITS = {"": 1, "B": 1, "K": 1e3, "KB": 1e3, "M": 1e6, "MB": 1e6, "G": 1e9, "GB": 1e9,
          "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}
_OOM_MESSAGES = ("out of memory", "not enough memory", "failed to allocate", "bad_alloc",
                 "bad allocation")


def parse_size(size: str | int) -> int:
    """Bytes in a size like 2GB, 500MB, 1.5GiB or a plain number of bytes."""
    if isinstance(size, int):
        value = size
    else:
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]*)\s*", size)
        unit = match.group(2).upper() if match else ""
        if match is None or unit not in _UNITS:
            raise ValueError(f"cannot read {size!r} as a memory size: use e.g. 2GB, 500MB, 1GiB")
        value = int(float(match.group(1)) * _UNITS[unit])
    if value <= 0:
        raise ValueError(f"a memory budget must be positive, not {size!r}")
    return value


def is_out_of_memory(err: BaseException) -> bool:
    """Whether `err` says that an allocation failed (the run may fit with smaller tiles)."""
    if isinstance(err, MemoryError | torch.OutOfMemoryError):
        return True
    return isinstance(err, RuntimeError) and any(m in str(err).lower() for m in _OOM_MESSAGES)


class _PeakTensorBytes(TorchDispatchMode):
    """Counts the bytes of tensor storages alive at once while operations run under it:
    each output's storage is counted when first seen and released when the last tensor
    using it is garbage-collected."""

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, list[int]] = {}  # storage address -> [bytes, tensors using it]
        self.current = self.peak = 0

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        # Nothing here runs under torch.compile, and guarding against it would import
        # torch._dynamo: seconds of start-up for a probe that takes milliseconds.
        return False

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None
                           ) -> Any:
        out = func(*args, **(kwargs or {}))
        for tensor in tree_leaves(out):
            if isinstance(tensor, torch.Tensor):
                self._track(tensor)
        return out

    def _track(self, tensor: torch.Tensor) -> None:
        storage = tensor.untyped_storage()
        key = storage.data_ptr()
        entry = self.live.get(key)
        if entry is None:
            entry = self.live[key] = [storage.nbytes(), 0]
            self.current += entry[0]
            self.peak = max(self.peak, self.current)
        entry[1] += 1
        weakref.finalize(tensor, self._release, key)

    def _release(self, key: int) -> None:
        entry = self.live[key]
        entry[1] -= 1
        if entry[1] == 0:
            self.current -= entry[0]
            del self.live[key]


def peak_bytes(run: Callable[[torch.Tensor], Any], x: torch.Tensor) -> int:
    """The most bytes of tensors alive at once while `run(x)` runs, x included."""
    tracker = _PeakTensorBytes()
    with torch.inference_mode(), tracker:
        run(x)
    return tracker.peak + x.untyped_storage().nbytes()


def bytes_per_pixel(run: Callable[[torch.Tensor], Any], channels: int,
                    dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu"
                    ) -> float:
    """Activation bytes per LR input pixel of a network: the growth of its peak between
    two small probes (what does not grow with the input, like the weights, drops out)."""
    small, large = 24, 48
    peaks = [peak_bytes(run, torch.rand(1, channels, side, side, device=device).to(dtype))
             for side in (small, large)]
    growth = (peaks[1] - peaks[0]) / (large**2 - small**2)
    return max(growth, peaks[1] / large**2 / 4)


def largest_tile(budget: int, cost: Callable[[int], float], smallest: int, largest: int
                 ) -> int:
    """The largest tile side in [smallest, largest] whose `cost(tile)` in bytes fits
    `budget`; a clear error when even the smallest does not."""
    if cost(smallest) > budget:
        raise MemoryError(f"a memory budget of {budget / 1e6:.0f} MB is too small: even "
                          f"{smallest}-pixel tiles need about {cost(smallest) / 1e6:.0f} MB")
    low, high = smallest, max(smallest, largest)
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if cost(middle) <= budget else (low, middle - 1)
    return low
