"""superres: image super-resolution with classic and deep models, measured exactly.

The public API is small (it lives in `superres.api`)::

    import superres
    up = superres.load("bicubic", scale=4)
    bigger = up.upscale(image)          # PIL image, NumPy array or torch tensor
    superres.list_models()              # every registered model
    superres.evaluate("bicubic", scale=2, datasets=["Set5"])
    superres.train("fsrcnn_x3")         # a shipped recipe, or a YAML file

Its names are looked up on first use, so that `import superres` stays cheap (no torch until
needed).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from superres.api import build, evaluate, list_models, load, model_table, train, upscale

__version__ = "0.1.0"  # the one place: pyproject.toml and the CLI read it from here

__all__ = ["build", "evaluate", "list_models", "load", "model_table", "train", "upscale"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from superres import api

        return getattr(api, name)
    raise AttributeError(f"module 'superres' has no attribute {name!r}")
