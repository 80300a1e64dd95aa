"""The one table of checkpoint families, and what needs all of them: the digest check of
any release, telling which model and scale a file holds, and loading a file for any
convertible model."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from superres.files import cache_folder, file_digest
from superres.models.convert.edsr import EDSR_FAMILY
from superres.models.convert.gan import GAN_FAMILY
from superres.models.convert.matlab import MATLAB_FAMILY
from superres.models.convert.mechanism import (
    Family,
    ReleasedWeights,
    Tensors,
    find_model,
)
from superres.models.convert.opencv import OPENCV_FAMILY
from superres.models.convert.reimpl import REIMPL_FAMILY
from superres.weights import read_header, save_weights

FAMILIES: tuple[Family, ...] = (EDSR_FAMILY, GAN_FAMILY, MATLAB_FAMILY, OPENCV_FAMILY,
                                REIMPL_FAMILY)
RELEASES: tuple[ReleasedWeights, ...] = tuple(r for f in FAMILIES for r in f.releases)


class MissingScale(ValueError):
    """A checkpoint that does not hold its scale, converted without one: SRCNN, FSRCNN and
    VDSR files other than known releases, and one network for several scales."""


@dataclass(frozen=True)
class Converted:
    """A released checkpoint loaded into superres's model: what `superres convert` saves."""

    model: nn.Module  # in eval mode
    name: str  # the registered model
    scale: int
    options: dict[str, Any]  # the builder's options the weights need, saved with them


def convert_state_dict(state: Mapping[str, Any], model_name: str, scale: int) -> Tensors:
    """A released checkpoint as the state dict of superres's `model_name` at `scale`, by the
    model's family; a checkpoint of another architecture, size or scale is refused with a
    ValueError."""
    family, _ = find_model(model_name, FAMILIES)
    return family.convert_state_dict(state, model_name, scale)


def check_release(
    path: str | Path, releases: Sequence[ReleasedWeights] | None = None
) -> ReleasedWeights | None:
    """The release (of `releases`, default every known one) a file saved under its published
    name is, after checking its sha256 against the published digest (a damaged or
    substituted file is refused); None for a file under another name, which cannot be
    checked."""
    path = Path(path)
    releases = RELEASES if releases is None else releases
    release = next((r for r in releases if r.file == path.name), None)
    published = (release.sha256 or release.sha256_prefix) if release else None
    if published:
        actual = file_digest(path)
        if not actual.startswith(published):
            raise ValueError(
                f"{path.name} has sha256 {actual}, but the published file's starts with "
                f"{published}: the download is damaged or not the authors' file"
            )
    return release


def releases_of(path: Path) -> list[ReleasedWeights]:
    """The known releases a file is, by its sha256, whatever its name."""
    digest = file_digest(path)
    return [r for r in RELEASES
            if (published := r.sha256 or r.sha256_prefix) and digest.startswith(published)]


def _candidates(path: Path, model_name: str | None) -> list[Family]:
    """The families that read the file's suffix (`.mat`, `.pb`; else PyTorch and safetensors
    files) and, where a model is named, convert it."""
    suffix = path.suffix.lower()
    families = ([f for f in FAMILIES if f.suffix == suffix]
                or [f for f in FAMILIES if f.suffix is None])
    if model_name is None:
        return families
    find_model(model_name, FAMILIES)  # an unknown model: the error names the known ones
    named = [f for f in families if model_name in f.specs]
    if not named:
        readers = ", ".join(sorted({f.suffix or "PyTorch or safetensors" for f in FAMILIES
                                    if model_name in f.specs}))
        raise ValueError(f"{model_name} checkpoints are {readers} files, not "
                         f"{suffix or 'suffix-less'} ones")
    return named


def _convert(
    path: Path, model_name: str | None, scale: int | None, known: list[ReleasedWeights]
) -> tuple[Family, str, int, Tensors, dict[str, Any]]:
    """The first candidate family that converts the file (to the model it identifies where
    none is named), or a one-line ValueError saying what each family found instead."""
    opened: dict[Callable[[Path], Mapping[str, Any]], Mapping[str, Any]] = {}
    errors = []
    for family in _candidates(path, model_name):
        if family.open not in opened:
            opened[family.open] = family.open(path)
        state = opened[family.open]
        try:
            name = model_name or family.identify(state)[0]
            found_scale = scale or _scale(family, state, known, path)
            tensors, options = family.convert(state, name, found_scale)
        except MissingScale:
            raise
        except ValueError as err:
            reason = " ".join(str(err).split())
            errors.append(reason if family.title in reason else f"{family.title}: {reason}")
            continue
        return family, name, found_scale, tensors, options
    raise ValueError(errors[0] if len(errors) == 1 else "; ".join(errors))


def scale_in_name(name: str) -> int | None:
    """The scale a file name states (`fsrcnn_x3.pth`, `EDSR_x4.pb`, `x2.mat`, `..._4x.pt`)."""
    m = re.search(r"(?:^|[^a-z0-9])x(\d)(?![0-9])|(?<![0-9a-z])(\d)x(?![a-z])", name.lower())
    return int(m[1] or m[2]) if m else None


def _scale(
    family: Family, state: Mapping[str, Any], known: list[ReleasedWeights], path: Path
) -> int:
    """The scale a checkpoint is for: its release's, else the one its tensors (or a frozen
    graph's ops) fix, else the one its file name states."""
    scales = sorted({r.scale for r in known})
    if len(scales) == 1:
        return scales[0]
    if scales:
        listed = ", ".join(f"x{s}" for s in scales[:-1]) + f" and x{scales[-1]}"
        raise MissingScale(f"it holds one {known[0].model} network for {listed}: give the scale "
                           "with -s")
    found = family.architecture(state)
    scale = found.scale or getattr(state, "scale", 0) or scale_in_name(path.name)
    if not scale:
        raise MissingScale(f"it holds {found} weights but not their scale, and is no release "
                           "superres knows: give the scale with -s")
    return scale


def convert_file(
    path: str | Path, model_name: str | None = None, scale: int | None = None
) -> Converted:
    """A released checkpoint file as superres's model, the model and scale read from the
    file where not given: a known release's from its sha256, others' from the tensors. A file
    under a published name is checked against its digest first; a ValueError names the file
    and what is wrong (`MissingScale` where the file does not tell its scale)."""
    path = Path(path)
    check_release(path)
    known = releases_of(path) if model_name is None or scale is None else []
    if model_name is None and len({r.model for r in known}) == 1:
        model_name = known[0].model
    try:
        family, model_name, scale, tensors, options = _convert(path, model_name, scale, known)
    except ValueError as err:
        message = str(err) if str(err).startswith(path.name) else f"{path.name}: {err}"
        raise type(err)(message) from None
    model = family.specs[model_name].build(scale, **options)
    model.load_state_dict(tensors)
    return Converted(model.eval(), model_name, scale, options)


CONVERTED_VAR = "SUPERRES_CONVERTED"


def converted_folder() -> Path:
    """Where weights converted on the fly are kept: ``$SUPERRES_CONVERTED``, else
    ``(XDG_CACHE_HOME or ~/.cache)/superres/converted``."""
    return cache_folder(CONVERTED_VAR, "converted")


def _holds_weights_of(path: Path, model_name: str, scale: int) -> bool:
    """Whether a safetensors file holds superres's weights of `model_name` (its keys, built
    with the options it records), or of a model no family converts: loaded as it is."""
    if not any(model_name in family.specs for family in FAMILIES):
        return True
    spec = find_model(model_name, FAMILIES)[1]
    keys, metadata = read_header(path)
    try:
        with torch.device("meta"):
            expected = spec.build(scale, **json.loads(metadata.get("build", "{}"))).state_dict()
    except (TypeError, ValueError):  # options of another model: not ours to judge
        return True
    return keys == set(expected)


def prepared_weights(path: str | Path, model_name: str, scale: int) -> Path:
    """The superres weights file to load into `model_name` at `scale`: `path` itself where it
    holds them, else `path` converted from any known checkpoint format (converted once: the
    result is kept in `converted_folder()` under the file's sha256, with its build options)."""
    path = Path(path)
    if path.suffix.lower() == ".safetensors" and _holds_weights_of(path, model_name, scale):
        return path
    digest = file_digest(path)
    cached = converted_folder() / f"{digest[:16]}-{model_name}-x{scale}.safetensors"
    if cached.is_file():
        return cached
    converted = convert_file(path, model_name, scale)
    metadata = {"model": model_name, "scale": str(scale), "converted_from": path.name,
                "sha256": digest}
    return save_weights(converted.model, cached, metadata, build=converted.options)


def load_released(path: str | Path, model_name: str, scale: int) -> nn.Module:
    """`model_name` built for `scale` with the weights of a released checkpoint file, in
    eval mode; a file under a published name is checked against its digest first."""
    return convert_file(path, model_name, scale).model
