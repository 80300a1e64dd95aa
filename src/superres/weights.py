"""One home for weights: where they are looked up, how they are read and written.

- The user's weights folder, ``$SUPERRES_WEIGHTS`` (default ``~/.cache/superres/weights``),
  holds pretrained networks used by losses and metrics (VGG19, LPIPS, NIQE's model); nothing
  is downloaded into it at run time without being asked.
- The zoo, `superres/zoo/`, holds the weights superres ships: safetensors files listed in
  `index.json` with their sha256 (checked before loading) and the scores measured with
  `superres eval`. Shipping a run into it is `superres.train.release`.
- Files are read as tensors only: safetensors, or PyTorch files loaded with
  ``weights_only=True`` (whole pickled models of a few re-implementations with an allow-list
  of inert stand-ins, `read_pickled_model`), so nothing in a file is ever unpickled into code.
  Files are written atomically: a killed process leaves the old file or the new one, never
  half of one.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import pickle
import struct
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
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
    read with `weights_only=True`: tensors in plain containers. A file that also holds other
    Python objects is read with `read_pickled_model`'s allow-list (whole models of the
    re-implementations it names come back as their state dicts); anything else is refused and
    no code in the file runs. A file that cannot be decoded is a one-line ValueError."""
    path = Path(path)
    if not path.is_file():
        raise WeightsNotFoundError(f"weights file {path} does not exist")
    try:
        if path.suffix.lower() == ".safetensors":
            return load_file(str(path))
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:  # whole pickled models: only the allow-listed classes
            state = read_pickled_model(path)
    except Exception as err:  # see _unreadable
        raise _unreadable(path, err) from None
    if not isinstance(state, Mapping):
        raise ValueError(f"{path.name} holds a {type(state).__name__}, not a state dict")
    return dict(state)


def _unreadable(path: Path, err: Exception) -> ValueError:
    """A weights file that cannot be decoded, as one line naming it. The decoders of a damaged
    file (safetensors', torch.load's zip reader and unpickler, `read_pickled_model`) raise
    many exception types for it (SafetensorError, RuntimeError, EOFError, KeyError,
    struct.error, MemoryError, ...), all meaning that."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    detail = lines[0] if lines else type(err).__name__
    if isinstance(err, pickle.UnpicklingError):  # the allow-list's refusal names the global
        return ValueError(f"{path.name} refused without unpickling it: {detail}")
    return ValueError(f"{path.name}: damaged, or not a weights file ({detail})")


def read_header(path: Path) -> tuple[set[str], dict[str, str]]:
    """The tensor names and the metadata of a safetensors file, read without its tensors; a
    damaged header is a one-line ValueError."""
    try:
        with safe_open(str(path), "pt") as handle:
            return set(handle.keys()), handle.metadata() or {}
    except Exception as err:  # SafetensorError, and whatever a damaged file raises
        raise _unreadable(path, err) from None


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The tensors of a flat safetensors or PyTorch (.pth/.pt) state dict."""
    path = Path(path)
    if path.is_file() and path.suffix not in WEIGHTS_SUFFIXES:
        raise ValueError(f"{path.name}: weights must be {', '.join(WEIGHTS_SUFFIXES)}")
    state = read_checkpoint(path)
    if not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path.name} is not a state dict (a mapping of names to tensors)")
    return state


def save_weights(
    model: nn.Module, path: Path, metadata: dict[str, str] | None = None,
    build: Mapping[str, Any] | None = None,
) -> Path:
    """Save a model's state dict as safetensors, atomically; `build` (the keyword arguments
    its builder needs beyond the scale) is recorded for `build_options`."""
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    metadata = {**(metadata or {}), **({"build": json.dumps(dict(build))} if build else {})}
    return atomic_write(path, lambda f: f.write(save(tensors, metadata=metadata)))


def build_options(path: Path) -> dict[str, Any]:
    """The builder's keyword arguments a safetensors file records ({} for most): converted
    releases whose sizes or test-time conventions are not the registered model's (LapSRN
    x8's 5 convolutions per level, SRCNN's replicated borders) load only when built so."""
    return json.loads(read_header(path)[1].get("build", "{}"))


def load_weights(model: nn.Module, path: Path, strict: bool = True) -> list[str]:
    """Load safetensors (or PyTorch) weights into `model`; with strict=False, skip tensors
    whose shapes differ and return their names (e.g. a scale-specific upsampler)."""
    tensors = read_state_dict(path)
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


# ----------------------------------------------------------------------------- whole pickled models
#
# Some popular re-implementations released whole pickled models (`torch.save(model)`, or
# {"epoch": n, "model": model}), which `weights_only=True` refuses: unpickling them normally
# imports their classes and runs whatever the pickle names. `read_pickled_model` unpickles
# them with an allow-list instead: tensors are rebuilt from their storages, the classes the
# allow-list names become inert `PickledModule`s that only keep their tensors, and any other
# global is refused before anything is called.

# The re-implementations whose whole pickled models are read (module.class as they pickle it).
REPO_CLASSES = (
    "vdsr.Net", "vdsr.Conv_ReLU_Block",  # twtygqyy/pytorch-vdsr
    "lapsrn.Net", "lapsrn._Conv_Block",  # twtygqyy/pytorch-LapSRN
)
# The torch.nn layers those models hold, pickled by their defining module.
TORCH_NN_CLASSES = tuple(
    f"torch.nn.modules.{name}" for name in (
        "conv.Conv2d", "conv.ConvTranspose2d", "activation.ReLU", "activation.LeakyReLU",
        "activation.PReLU", "activation.Tanh", "activation.Sigmoid", "batchnorm.BatchNorm2d",
        "pixelshuffle.PixelShuffle", "container.Sequential", "container.ModuleList",
    )
)
_STORAGE_DTYPES = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool, "UntypedStorage": torch.uint8,
}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # torch.save's format before 1.6 (not a zip file)


class PickledModule:
    """An inert stand-in for a module class of a whole pickled model: pickle hands it the
    module's attributes, of which it keeps the tensors, and it has no behaviour at all."""

    def __new__(cls, *args: Any, **kwargs: Any) -> PickledModule:
        return object.__new__(cls)

    def __setstate__(self, state: Any) -> None:
        self.state = state if isinstance(state, dict) else {}

    def state_dict(self, prefix: str = "") -> dict[str, torch.Tensor]:
        """The tensors `nn.Module.state_dict` would give: parameters, persistent buffers and
        those of the submodules, under the same dotted names."""
        skip = self.state.get("_non_persistent_buffers_set") or set()
        tensors = {
            f"{prefix}{name}": value
            for group in ("_parameters", "_buffers")
            for name, value in (self.state.get(group) or {}).items()
            if isinstance(value, torch.Tensor) and name not in skip
        }
        for name, child in (self.state.get("_modules") or {}).items():
            if isinstance(child, PickledModule):
                tensors.update(child.state_dict(f"{prefix}{name}."))
        return tensors


class _StorageType:
    """What a pickled `torch.FloatStorage` (and its kin) stands for: a dtype."""

    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype = dtype


def _rebuild_tensor(
    storage: torch.Tensor, offset: int, size: tuple[int, ...], stride: tuple[int, ...],
    *_: Any,
) -> torch.Tensor:
    """torch._utils._rebuild_tensor(_v2) on a storage read as a flat tensor."""
    return storage.as_strided(size, stride, offset)


def _rebuild_parameter(data: torch.Tensor, *_: Any) -> torch.Tensor:
    """torch._utils._rebuild_parameter(_with_state): the parameter's data is all we keep."""
    return data


_GLOBALS: dict[str, Any] = {
    "collections.OrderedDict": dict,
    "builtins.set": set,
    "torch._utils._rebuild_tensor": _rebuild_tensor,
    "torch._utils._rebuild_tensor_v2": _rebuild_tensor,
    "torch._utils._rebuild_parameter": _rebuild_parameter,
    "torch._utils._rebuild_parameter_with_state": _rebuild_parameter,
    # the module attribute `_backend` of PyTorch < 0.4 pickles
    "torch.nn.backends.thnn._get_thnn_function_backend": lambda: None,
    **{f"torch.{name}": _StorageType(dtype) for name, dtype in _STORAGE_DTYPES.items()},
}
ALLOWED_GLOBALS = frozenset([*_GLOBALS, *REPO_CLASSES, *TORCH_NN_CLASSES])


class _RestrictedUnpickler(pickle._Unpickler):
    """An unpickler that resolves only `ALLOWED_GLOBALS`; storages come from `storage`.

    The pure-Python unpickler, as torch's own weights-only one: its memo is a dict, where the
    C unpickler grows an array up to the largest index a file names, so that one damaged
    LONG_BINPUT in a 50 kB file made it zero 9 GB for over a minute."""

    def __init__(self, file: Any, storage: Any) -> None:
        super().__init__(file)
        self.storage = storage
        self.classes: dict[str, type[PickledModule]] = {}

    def find_class(self, module: str, name: str) -> Any:
        module = "builtins" if module == "__builtin__" else module  # protocol 2's name
        qualname = f"{module}.{name}"
        if qualname in _GLOBALS:
            return _GLOBALS[qualname]
        if qualname in REPO_CLASSES or qualname in TORCH_NN_CLASSES:
            if qualname not in self.classes:
                self.classes[qualname] = type(name, (PickledModule,), {})
            return self.classes[qualname]
        raise pickle.UnpicklingError(
            f"refusing to unpickle {qualname}: only tensors, torch.nn layers and the model "
            f"classes of {', '.join(REPO_CLASSES)} are allowed"
        )

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and pid and pid[0] in ("storage", "module")):
            raise pickle.UnpicklingError(f"refusing to unpickle the persistent id {pid!r:.60}")
        # ("module", class, source file, source): the legacy format's reference to a class,
        # already resolved (and so checked) by find_class
        return self.storage(*pid[1:]) if pid[0] == "storage" else pid[1]


def _plain(value: Any) -> Any:
    """The unpickled object with every PickledModule replaced by its state dict."""
    if isinstance(value, PickledModule):
        return value.state_dict()
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_plain(item) for item in value)
    return value


def _load_zip(path: Path) -> Any:
    """torch.save's zip format: data.pkl, and each storage as the file data/<key>."""
    with zipfile.ZipFile(path) as archive:
        pickled = next((n for n in archive.namelist() if n.endswith("/data.pkl")), None)
        if pickled is None:
            raise pickle.UnpicklingError("a zip file without data.pkl is no PyTorch checkpoint")
        root = pickled[: -len("data.pkl")]
        order = f"{root}byteorder"
        if order in archive.namelist() and archive.read(order) != b"little":
            raise pickle.UnpicklingError("big-endian checkpoints are not supported")
        storages: dict[str, torch.Tensor] = {}

        def storage(kind: _StorageType, key: str, location: Any, numel: int) -> torch.Tensor:
            if key not in storages:
                data = bytearray(archive.read(f"{root}data/{key}"))
                storages[key] = torch.frombuffer(data, dtype=kind.dtype) if data else (
                    torch.empty(0, dtype=kind.dtype))
            return storages[key]

        return _RestrictedUnpickler(io.BytesIO(archive.read(pickled)), storage).load()


def _load_legacy(path: Path) -> Any:
    """torch.save's format before PyTorch 1.6: a magic number, the protocol, system info, the
    object, the storage keys, then each storage's element count and bytes."""
    with open(path, "rb") as f:
        header = [_RestrictedUnpickler(f, None).load() for _ in range(3)]
        if header[0] != _LEGACY_MAGIC or header[1] != 1001:
            raise pickle.UnpicklingError("not a PyTorch checkpoint (no torch.save header)")
        if not header[2].get("little_endian", True):
            raise pickle.UnpicklingError("big-endian checkpoints are not supported")
        storages: dict[str, torch.Tensor] = {}

        size = path.stat().st_size

        def storage(kind: _StorageType, key: str, location: Any, numel: int,
                    view: Any = None) -> torch.Tensor:
            if key not in storages:
                if numel * kind.dtype.itemsize > size:  # more than the file holds
                    raise pickle.UnpicklingError(f"storage {key} is larger than the file")
                storages[key] = torch.empty(numel, dtype=kind.dtype)
            if view is not None:  # (view key, offset, size): a slice of the root storage
                storages[view[0]] = storages[key][view[1]: view[1] + view[2]]
                return storages[view[0]]
            return storages[key]

        result = _RestrictedUnpickler(f, storage).load()
        for key in _RestrictedUnpickler(f, None).load():
            target = storages[key]
            (numel,) = struct.unpack("<q", f.read(8))
            data = bytearray(f.read(numel * target.element_size()))
            if numel != target.numel() or len(data) != numel * target.element_size():
                raise pickle.UnpicklingError(f"storage {key} is truncated")
            target.copy_(torch.frombuffer(data, dtype=target.dtype))
        return result


def read_pickled_model(path: str | os.PathLike[str]) -> Any:
    """A PyTorch checkpoint that may hold whole pickled models, unpickled with an allow-list
    (`ALLOWED_GLOBALS`): the allowed model classes come back as their state dicts, and a
    pickle naming any other global raises a one-line `pickle.UnpicklingError` naming it,
    before anything in the file is called."""
    path = Path(path)
    loaded = _load_zip(path) if zipfile.is_zipfile(path) else _load_legacy(path)
    return _plain(loaded)


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
    # the LR the scores were measured on: "bicubic", the standard protocol, or the named
    # realistic degradation (`superres eval --degradation`, fixed seeds) of a model trained
    # for real photos, whose clean-protocol scores would say nothing of what it is for
    degradation: str = "bicubic"

    @property
    def natural_images(self) -> bool:
        """Scored on the natural-image benchmarks (Set5 and the rest): a face or video
        model's weights are scored on their own sets and are no upscaler for any photo."""
        return "Set5" in self.scores

    @property
    def clean(self) -> bool:
        """Scored by the standard (bicubic) protocol, comparable with the papers' tables."""
        return self.degradation == "bicubic"

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


# ----------------------------------------------------------------------------- leave-one-out folds
#
# A guided depth model is scored by leave-one-scene-out, so it ships one weights file per
# held-out scene (and `all`, trained on every scene, for users' own maps) in `zoo/<model>/`,
# listed with their sha256 in that folder's index.json.

FOLDS_INDEX = "index.json"


def shipped_folds(model: str) -> dict[str, Path]:
    """The fold weights shipped for `model`: held-out scene (or `all`) -> file, each checked
    against its recorded sha256; {} when none are shipped."""
    index = ZOO / model / FOLDS_INDEX
    if not index.is_file():
        return {}
    folds = json.loads(index.read_text())["folds"]
    checked = {}
    for scene, entry in folds.items():
        path = ZOO / model / entry["file"]
        if not path.is_file():
            raise WeightsNotFoundError(f"{model}/{entry['file']} is missing from the installation")
        if file_digest(path) != entry["sha256"]:
            raise ValueError(f"{model}/{entry['file']} is corrupt: its sha256 is not the "
                             "recorded one")
        checked[scene] = path
    return checked


def add_shipped_folds(model: str, files: Mapping[str, Path], record: Mapping[str, Any]) -> Path:
    """Copy fold weights (scene -> file) into `zoo/<model>/` and write its index.json with
    their sha256 and `record` (recipe, steps, scores); returns the index's path."""
    folds = {}
    for scene, source in files.items():
        target = ZOO / model / f"{scene}.safetensors"
        atomic_write(target, lambda f, source=source: f.write(source.read_bytes()))
        folds[scene] = {"file": target.name, "sha256": file_digest(target)}
    text = json.dumps({**record, "folds": folds}, indent=1) + "\n"
    return atomic_write(ZOO / model / FOLDS_INDEX, lambda f: f.write(text.encode()))
