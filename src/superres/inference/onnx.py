"""ONNX export with dynamic height and width, and an ONNX Runtime backend for upscaling.

Fixed-size exports are the common complaint with SR models in ONNX: these graphs take any
image size (checked in the tests by running two sizes against PyTorch). ONNX Runtime and
the exporter's helpers (onnx, onnxscript) are optional: `pip install superres[onnx]`.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

_MIN_SIDE, _MAX_SIDE = 8, 16384


def _require(module: str) -> None:
    try:
        __import__(module)
    except ImportError as err:
        raise ImportError(
            f"ONNX support needs the {module} package: pip install 'superres[onnx]'"
        ) from err


def export_onnx(
    model: nn.Module, channels: int | None, path: Path, opset: int = 18
) -> Path:
    """Write `model` (N x C x H x W -> upscaled) as ONNX with dynamic batch, height and
    width; `channels=None` (interpolation) makes the channel count dynamic too. The file
    is written beside its target and renamed, so a killed export leaves nothing behind.
    A model that torch.export cannot capture as one graph (a solver that iterates until it
    converges, say) is a ValueError saying so."""
    _require("onnxscript")
    import os

    model = model.eval()
    # Example sizes above 1 so that no dimension is specialised to a constant.
    example = torch.rand(2, channels or 3, 32, 32)
    dims = {0: torch.export.Dim("batch", min=1, max=1024),
            2: torch.export.Dim("height", min=_MIN_SIDE, max=_MAX_SIDE),
            3: torch.export.Dim("width", min=_MIN_SIDE, max=_MAX_SIDE)}
    if channels is None:
        dims[1] = torch.export.Dim("channels", min=1, max=4)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        with _quiet_exporter():
            torch.onnx.export(
                model, (example,), str(temporary), input_names=["lr"], output_names=["sr"],
                dynamic_shapes=(dims,), opset_version=opset, dynamo=True, verbose=False,
            )
        os.replace(temporary, path)
    except torch.onnx.OnnxExporterError as err:
        cause = err.__cause__ or err
        reason = next((line for line in str(cause).splitlines() if line.strip()), "")
        raise ValueError(f"{type(model).__name__} cannot be exported to ONNX: torch.export "
                         f"cannot capture it as one graph ({type(cause).__name__}: "
                         f"{reason.strip()})") from err
    finally:
        temporary.unlink(missing_ok=True)
    return path


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Keep the exporter's notes on PyTorch internals (warnings, log lines, the graph it
    prints when tracing fails) off the user's terminal: a failure is reported as one error."""
    logger = logging.getLogger("torch")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


class OnnxRuntimeModel(nn.Module):
    """An exported model run by ONNX Runtime, usable wherever a torch model is (CPU)."""

    def __init__(self, path: Path, threads: int | None = None) -> None:
        super().__init__()
        _require("onnxruntime")
        import onnxruntime

        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.path = path
        self.session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lr = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
        (sr,) = self.session.run(None, {"lr": lr})
        return torch.from_numpy(sr).to(x.device)


def cached_export(model: nn.Module, channels: int | None, key: str) -> Path:
    """Export once per (model, weights) and reuse the file: exporting takes seconds."""
    import os

    state = b"".join(t.detach().cpu().numpy().tobytes() for t in model.state_dict().values())
    digest = hashlib.sha256(key.encode() + state).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "superres" / "onnx"
    path = cache / f"{key}-{digest}.onnx"
    return path if path.exists() else export_onnx(model, channels, path)
