"""Shipped weights: safetensors files beside this module, listed in `index.json` with their
sha256 (checked before loading) and the scores measured with `superres eval`."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from superres.files import file_digest

ZOO = Path(__file__).resolve().parent


class WeightsNotFoundError(FileNotFoundError):
    """A learned model was asked for without weights to load."""


@dataclass(frozen=True)
class ShippedWeights:
    """One shipped weights file and what it measured."""

    model: str
    scale: int
    file: str
    sha256: str
    recipe: str
    steps: int
    # dataset -> [PSNR, SSIM], measured with `superres eval` (Y channel, shave = scale)
    scores: dict[str, list[float]] = field(default_factory=dict)

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


def add_to_zoo(
    weights_file: Path, model: str, scale: int, recipe: str, steps: int,
    datasets: tuple[str, ...] = ("Set5", "Set14", "BSD100"),
) -> ShippedWeights:
    """Copy trained weights into the zoo, measure them with the evaluation protocol and
    record file, sha256 and scores in index.json (replacing an older entry)."""
    import shutil

    from superres.evaluation import evaluate
    from superres.upscaler import load

    upscaler = load(model, scale, weights=weights_file)
    scores = {r.dataset: [round(r.psnr, 4), round(r.ssim, 5)]
              for r in evaluate(upscaler, datasets, progress=False)}
    target = ZOO / f"{model}_x{scale}.safetensors"
    shutil.copyfile(weights_file, target)
    entry = ShippedWeights(model=model, scale=scale, file=target.name,
                           sha256=file_digest(target), recipe=recipe, steps=steps, scores=scores)
    entries = [w for w in shipped_weights() if (w.model, w.scale) != (model, scale)]
    entries = sorted([*entries, entry], key=lambda w: (w.model, w.scale))
    index = json.dumps([dataclasses.asdict(w) for w in entries], indent=1)
    (ZOO / "index.json").write_text(index + "\n")
    shipped_weights.cache_clear()
    return entry
