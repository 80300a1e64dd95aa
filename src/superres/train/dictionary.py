"""Coupled dictionary learning for sparse-coding SR (Yang et al., IEEE TIP 2010, Section III):
one dictionary over stacked HR patches and LR features, so both halves of a pair share one
sparse code. What `superres.models.sparse_coding` loads.

As the authors' released code (`Demo_Dictionary_Training.m`, `train_coupled_dict.m`,
`reg_sparse_coding.m`): 100,000 patch pairs drawn from the training images in proportion to
their size; HR patches 5 x 5 with their mean removed, LR features the 4 derivative maps of
the bicubic-upscaled LR image on the same 5 x 5 window; pairs whose HR patch has variance
10 or less (0-255 units) are pruned; each half is normalised to unit length, weighted by the
square root of its dimension (5 and 10), and the stacked vector normalised again. Then,
from random zero-mean unit-norm atoms, 40 alternations of sparse coding (the lasso, penalty
0.15) and a least-squares dictionary update with atoms of norm at most 1.

Deviations: LR images are the project's MATLAB bicubic of the modcropped HR image, rounded
to uint8, and patches come from its BT.601 luma (the code uses `rgb2gray` and resizes
back to the uncropped size); positions are drawn uniformly at random, 2 pixels from the
border (the code draws a random grid); the dictionary update is block coordinate descent
(Mairal et al., JMLR 2010), which reaches the same constrained least-squares minimum as the
code's Lagrange dual; an atom no code uses is restarted from a random training vector.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save
from tqdm import tqdm

from superres.classic.lasso import lasso
from superres.data import dataset_images
from superres.files import atomic_write
from superres.image.color import rgb_to_y
from superres.image.degrade import bicubic_lr, modcrop
from superres.image.io import read_image
from superres.image.resize import imresize
from superres.models.sparse_coding import (
    ATOMS,
    CHUNK,
    MARGIN,
    PATCH,
    PEAK,
    gradient_features,
    patches_at,
)
from superres.train.checkpoint import load_checkpoint, save_checkpoint

PATCHES = 100_000  # patch pairs sampled before pruning
MIN_VARIANCE = 10.0  # HR patches this flat or flatter are pruned (0-255 units)
PENALTY = 0.15  # the lasso penalty while learning
ITERATIONS = 40  # alternations of sparse coding and dictionary update
UPDATE_SWEEPS = 50  # most block-coordinate sweeps per dictionary update


@dataclass(frozen=True)
class DictionarySettings:
    """Everything that determines the learned dictionaries (with the images)."""

    scale: int
    atoms: int = ATOMS
    patches: int = PATCHES
    penalty: float = PENALTY
    iterations: int = ITERATIONS
    seed: int = 0
    dataset: str = "T91"


@dataclass(frozen=True)
class CoupledDictionaries:
    """The learned pair and what learning it cost."""

    high: torch.Tensor  # 25 x atoms: mean-removed HR patches
    low: torch.Tensor  # 100 x atoms: LR gradient features
    settings: DictionarySettings
    pairs: int  # training pairs left after pruning
    objective: list[float]  # per iteration: 0.5 ||X - DZ||^2 + penalty ||Z||_1, mean per pair
    seconds: float  # wall-clock learning time, summed over resumed runs


def _luma(pixels: np.ndarray) -> torch.Tensor:
    """1 x 1 x H x W float luma in 0-255 units: BT.601 Y of RGB, raw intensity of gray."""
    image = torch.from_numpy(pixels.astype(np.float32) / 255)
    y = image[..., 0] if pixels.shape[2] == 1 else rgb_to_y(image.permute(2, 0, 1))[0]
    return y[None, None] * PEAK


def sample_patch_pairs(
    scale: int, count: int = PATCHES, seed: int = 0, dataset: str = "T91"
) -> tuple[torch.Tensor, torch.Tensor]:
    """HR patches (n x 25, mean removed) and LR features (n x 100) at random positions of
    the training images, about `count` in all, each image's share in proportion to its
    pixels; flat pairs pruned."""
    _, paths = dataset_images(dataset)
    pictures = [modcrop(read_image(path).pixels, scale) for path in paths]
    sizes = np.array([p.shape[0] * p.shape[1] for p in pictures], dtype=np.float64)
    shares = np.floor(count * sizes / sizes.sum()).astype(int)
    generator = torch.Generator().manual_seed(seed)
    highs, lows = [], []
    for pixels, share in zip(pictures, shares, strict=True):
        hr = _luma(pixels)
        lr = _luma(bicubic_lr(pixels, scale))
        features = gradient_features(imresize(lr, size=tuple(hr.shape[-2:])))[0]
        rows, cols = (n - PATCH - 2 * MARGIN + 1 for n in hr.shape[-2:])
        if min(rows, cols) < 1 or share < 1:
            continue
        picks = torch.randperm(rows * cols, generator=generator)[:share]
        tops, lefts = picks // cols + MARGIN, picks % cols + MARGIN
        high = patches_at(hr[0], tops, lefts)
        highs.append(high - high.mean(dim=1, keepdim=True))
        lows.append(patches_at(features, tops, lefts))
    high, low = torch.cat(highs), torch.cat(lows)
    keep = high.var(dim=1) > MIN_VARIANCE
    return high[keep], low[keep]


def training_vectors(high: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
    """The stacked, normalised vectors the joint dictionary is learned on (n x 125): each
    half unit-length, weighted by the square root of its dimension, the whole unit-length."""
    keep = (high.norm(dim=1) > 0) & (low.norm(dim=1) > 0)
    high, low = high[keep], low[keep]
    joint = torch.cat([
        math.sqrt(high.shape[1]) * high / high.norm(dim=1, keepdim=True),
        math.sqrt(low.shape[1]) * low / low.norm(dim=1, keepdim=True),
    ], dim=1)
    return joint / joint.norm(dim=1, keepdim=True)


def random_dictionary(dimension: int, atoms: int, generator: torch.Generator) -> torch.Tensor:
    """Uniform random atoms, zero-mean and unit-norm: the released code's starting point."""
    atoms_ = torch.rand(dimension, atoms, generator=generator) - 0.5
    atoms_ = atoms_ - atoms_.mean(dim=0)
    return atoms_ / atoms_.norm(dim=0)


def update_dictionary(
    dictionary: torch.Tensor, data_codes: torch.Tensor, code_codes: torch.Tensor,
    sweeps: int = UPDATE_SWEEPS, tolerance: float = 1e-6,
) -> torch.Tensor:
    """min_D ||X - D Z||^2 subject to ||d_j|| <= 1, from X Z^T (`data_codes`, m x K) and
    Z Z^T (`code_codes`, K x K), by exact minimisation over one atom at a time. Atoms no
    code uses are left as they are."""
    dictionary = dictionary.clone()
    used = [j for j in range(dictionary.shape[1]) if code_codes[j, j] > 0]
    for _ in range(sweeps):
        largest = 0.0
        for j in used:
            atom = dictionary[:, j] + (
                data_codes[:, j] - dictionary @ code_codes[:, j]) / code_codes[j, j]
            atom = atom / max(float(atom.norm()), 1.0)
            largest = max(largest, float((atom - dictionary[:, j]).abs().max()))
            dictionary[:, j] = atom
        if largest <= tolerance:
            break
    return dictionary


def _code_statistics(
    dictionary: torch.Tensor, vectors: torch.Tensor, penalty: float
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Sparse-code every vector; return X Z^T, Z Z^T and the mean objective, chunk by chunk
    so the n x K codes are never held at once."""
    gram = dictionary.T @ dictionary
    data_codes = torch.zeros_like(dictionary)
    code_codes = torch.zeros_like(gram)
    objective = 0.0
    for chunk in vectors.split(CHUNK):
        codes = lasso(dictionary, chunk, penalty, gram=gram)
        data_codes += chunk.T @ codes
        code_codes += codes.T @ codes
        residual = chunk - codes @ dictionary.T
        objective += float(0.5 * residual.square().sum() + penalty * codes.abs().sum())
    return data_codes, code_codes, objective / vectors.shape[0]


def learn_dictionaries(
    settings: DictionarySettings, checkpoint: Path | None = None, progress: bool = True
) -> CoupledDictionaries:
    """Learn the coupled dictionaries; with `checkpoint`, save after every iteration and
    resume from it (the same settings only), so a long run can be stopped at any time."""
    start = time.perf_counter()
    generator = torch.Generator().manual_seed(settings.seed)
    high, low = sample_patch_pairs(settings.scale, settings.patches, settings.seed,
                                   settings.dataset)
    vectors = training_vectors(high, low)
    dictionary = random_dictionary(vectors.shape[1], settings.atoms, generator)
    done, objective, seconds = 0, [], 0.0
    if checkpoint is not None and checkpoint.exists():
        state = load_checkpoint(checkpoint)
        if state["settings"] != dataclasses.asdict(settings):
            raise ValueError(f"{checkpoint} was made with other settings: "
                             f"{state['settings']}; remove it or use the same settings")
        dictionary, done = state["dictionary"], state["iteration"]
        objective, seconds = state["objective"], state["seconds"]
    bar = tqdm(range(done, settings.iterations), initial=done, total=settings.iterations,
               desc=f"dictionary x{settings.scale}", unit="iter", disable=not progress)
    for iteration in bar:
        data_codes, code_codes, value = _code_statistics(dictionary, vectors, settings.penalty)
        objective.append(value)
        dictionary = update_dictionary(dictionary, data_codes, code_codes)
        unused = (code_codes.diagonal() == 0).nonzero()[:, 0]
        if unused.numel():  # restart them from distinct random training vectors
            restart = torch.Generator().manual_seed(settings.seed + iteration + 1)
            picks = torch.randperm(vectors.shape[0], generator=restart)[: unused.numel()]
            dictionary[:, unused[: picks.numel()]] = vectors[picks].T
        bar.set_postfix(objective=f"{value:.4f}", unused=unused.numel())
        if checkpoint is not None:
            save_checkpoint({
                "dictionary": dictionary, "iteration": iteration + 1, "objective": objective,
                "seconds": seconds + time.perf_counter() - start,
                "settings": dataclasses.asdict(settings),
            }, checkpoint)
    bar.close()
    return CoupledDictionaries(  # HR rows first, as `training_vectors` stacks them
        high=dictionary[: PATCH * PATCH].contiguous(),
        low=dictionary[PATCH * PATCH :].contiguous(),
        settings=settings, pairs=vectors.shape[0], objective=objective,
        seconds=seconds + time.perf_counter() - start,
    )


def save_dictionaries(learned: CoupledDictionaries, path: Path) -> Path:
    """Write the pair as safetensors that `SparseCodingSR` loads (keys `high`, `low`), with
    the settings and cost in the metadata."""
    metadata = {key: str(value) for key, value in dataclasses.asdict(learned.settings).items()}
    metadata |= {"pairs": str(learned.pairs), "seconds": f"{learned.seconds:.0f}",
                 "objective": f"{learned.objective[-1]:.6f}" if learned.objective else ""}
    tensors = {"high": learned.high, "low": learned.low}
    return atomic_write(path, lambda f: f.write(save(tensors, metadata=metadata)))
