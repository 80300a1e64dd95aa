"""The one table of checkpoint families, and what needs all of them: the digest check of
any release, and loading a file for any convertible model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from torch import nn

from superres.files import file_digest
from superres.models.convert.edsr import EDSR_FAMILY
from superres.models.convert.gan import GAN_FAMILY
from superres.models.convert.mechanism import Family, ReleasedWeights, Tensors, find_model
from superres.weights import read_checkpoint

FAMILIES: tuple[Family, ...] = (EDSR_FAMILY, GAN_FAMILY)
RELEASES: tuple[ReleasedWeights, ...] = tuple(r for f in FAMILIES for r in f.releases)


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


def load_released(path: str | Path, model_name: str, scale: int) -> nn.Module:
    """`model_name` built for `scale` with the weights of a released checkpoint file, in
    eval mode; a file under a published name is checked against its digest first."""
    check_release(path)
    checkpoint = read_checkpoint(path)
    family, spec = find_model(model_name, FAMILIES)
    state = family.convert_state_dict(checkpoint, model_name, scale)
    model = spec.build(scale)
    model.load_state_dict(state)
    return model.eval()
