"""Named models: the explicit registry of everything `superres` can build."""

from __future__ import annotations

from superres.models.interpolation import BICUBIC, BILINEAR, LANCZOS, NEAREST
from superres.models.registry import ModelSpec

MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in (NEAREST, BILINEAR, BICUBIC, LANCZOS)}


def get_model(name: str) -> ModelSpec:
    """The spec of a registered model (case-insensitive); unknown names list the known ones."""
    spec = MODELS.get(name.lower())
    if spec is None:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(MODELS)}")
    return spec


def default_model(scale: int) -> ModelSpec:
    """The best model usable at `scale` without downloads: for now, bicubic."""
    spec = MODELS["bicubic"]
    spec.check_scale(scale)
    return spec


__all__ = ["MODELS", "ModelSpec", "default_model", "get_model"]
