"""NIQE, the Natural Image Quality Evaluator (Mittal, Soundararajan and Bovik, "Making a
'Completely Blind' Image Quality Analyzer", IEEE Signal Processing Letters 20(3), 2013).

A no-reference score: the distance between a multivariate Gaussian fitted to the natural
scene statistics of an image's blocks and one fitted to pristine images. Lower looks more
natural. Perceptual-SR work (ESRGAN, the PIRM 2018 challenge) reports it because PSNR punishes
exactly the texture that a GAN restores.

Computed as the authors' MATLAB release does (`computequality.m`, `computefeature.m`,
`estimateaggdparam.m`, `estimatemodelparam.m`): a gray image in 0..255, cropped to whole
96x96 blocks; MSCN coefficients with a 7x7 Gaussian window (sigma 7/6, replicated borders);
18 features per block and scale; a second scale after MATLAB's bicubic `imresize` by 0.5
(48x48 blocks); the mean and covariance of the block features; and
sqrt((mu_p - mu)ᵀ pinv((S_p + S) / 2) (mu_p - mu)). Two details follow the code where the
paper's text differs: the MSCN features are the AGGD estimator's shape and mean of its left
and right scales (for the symmetric MSCN histogram, the paper's GGD fit), and the
paired-product features are the AGGD shape, mean, and left and right scales (beta, not
variances). Colour images are scored on their BT.601 Y channel rounded to integers, as MATLAB's
`rgb2ycbcr` returns it for a uint8 image: that is how the published calibration was made
(MATLAB R2021a gives 5.72957338 for Set14's baboon cut to 480x492, reproduced here to 1e-6;
the unrounded Y gives 5.636, `rgb2gray` 5.750 rounded and 5.714 unrounded).
"""

from __future__ import annotations

import math
import os
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from superres.image.resize import imresize
from superres.metrics.protocol import (
    filter_valid,
    gaussian_window,
    shave,
    to_y,
)
from superres.weights import WeightsNotFoundError

BLOCK = 96
SHARPNESS_THRESHOLD = 0.75  # pristine blocks: local deviation above 0.75 of the image's max
FEATURES = 36  # 18 per scale, 2 scales
MODEL_FILE = "niqe_pristine.npz"
OFFICIAL_URL = "http://live.ece.utexas.edu/research/quality/niqe_release.zip"

# The AGGD shape is searched on MATLAB's grid 0.2:0.001:10 for the moment ratio it implies.
_SHAPES = 0.2 + 0.001 * np.arange(9801)
_gamma = np.vectorize(math.gamma, otypes=[float])
_RATIOS = _gamma(2 / _SHAPES) ** 2 / (_gamma(1 / _SHAPES) * _gamma(3 / _SHAPES))


def fit_aggd(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Moment-matching fit of an asymmetric generalised Gaussian (Lasmar, Stitou and Berthoumieu
    2009) to each row of `samples`: shape alpha and left and right scales beta_l, beta_r.

    NaN where a row has no negative or no positive value (no left or right side to fit).
    A symmetric sample gives beta_l ≈ beta_r, the generalised Gaussian's scale.
    """
    x = np.atleast_2d(np.asarray(samples, dtype=np.float64))
    negative, positive = x < 0, x > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        left_std = np.sqrt((x**2 * negative).sum(1) / negative.sum(1))
        right_std = np.sqrt((x**2 * positive).sum(1) / positive.sum(1))
        skew = left_std / right_std
        ratio = np.abs(x).mean(1) ** 2 / (x**2).mean(1)
        ratio = ratio * (skew**3 + 1) * (skew + 1) / (skew**2 + 1) ** 2
    found = np.isfinite(ratio)
    index = np.argmin((_RATIOS[None, :] - np.where(found, ratio, 0)[:, None]) ** 2, axis=1)
    shape = np.where(found, _SHAPES[index], np.nan)
    with np.errstate(invalid="ignore"):
        to_scale = np.sqrt(_gamma(1 / shape) / _gamma(3 / shape))
    return shape, left_std * to_scale, right_std * to_scale


def mscn(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean-subtracted contrast-normalised coefficients (I - mu) / (sigma + 1) of a 2-D image
    in 0..255, and the local deviation sigma: NIQE's 7x7 Gaussian (sigma 7/6) with replicated
    borders, as MATLAB's `imfilter(..., 'replicate')`. Natural images make them near-Gaussian;
    blur, noise and artefacts bend their histogram in telling ways."""
    if image.ndim != 2:
        raise ValueError(f"MSCN needs a 2-D gray image, got shape {image.shape}")
    window = gaussian_window(7, 7 / 6)
    padded = np.pad(np.asarray(image, dtype=np.float64), 3, mode="edge")
    mean = filter_valid(padded, window)
    sigma = np.sqrt(np.abs(filter_valid(padded**2, window) - mean**2))
    return (image - mean) / (sigma + 1), sigma


def _blocks(image: np.ndarray, size: int) -> np.ndarray:
    """The whole size x size blocks of a 2-D image, as (count, size, size)."""
    rows, columns = image.shape[0] // size, image.shape[1] // size
    cropped = image[: rows * size, : columns * size]
    return cropped.reshape(rows, size, columns, size).swapaxes(1, 2).reshape(-1, size, size)


def block_features(coefficients: np.ndarray) -> np.ndarray:
    """The 18 NIQE features of each (count, h, w) block of MSCN coefficients: AGGD shape and
    mean scale of the coefficients, then for the products of horizontal, vertical and both
    diagonal neighbours (wrapping inside the block, as MATLAB's `circshift`), the AGGD shape,
    mean, left and right scales."""
    count = len(coefficients)
    shape, left, right = fit_aggd(coefficients.reshape(count, -1))
    features = [shape, (left + right) / 2]
    for shift in ((0, 1), (1, 0), (1, 1), (1, -1)):
        products = coefficients * np.roll(coefficients, shift, axis=(1, 2))
        shape, left, right = fit_aggd(products.reshape(count, -1))
        with np.errstate(invalid="ignore"):
            mean = (right - left) * _gamma(2 / shape) / _gamma(1 / shape)
        features += [shape, mean, left, right]
    return np.stack(features, axis=1)


def gray(image: np.ndarray) -> np.ndarray:
    """A 2-D float image in 0..255: the raw values of a gray one; of a colour one, Y (BT.601)
    rounded as MATLAB's uint8 `rgb2ycbcr`, without which NIQE misses MATLAB's by about 0.1."""
    image = np.asarray(image)
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        return to_y(image)
    if image.ndim == 3 and image.shape[2] == 3:
        return np.round(to_y(image))
    raise ValueError(f"expected an H x W or H x W x (1 or 3) image, got shape {image.shape}")


def image_features(image: np.ndarray, block: int = BLOCK) -> tuple[np.ndarray, np.ndarray]:
    """(count, 36) features of each whole block of an image in 0..255, and each block's
    sharpness (its mean local deviation at full scale), which selects pristine blocks."""
    plane = gray(image)
    if block < 2 or block % 2:
        raise ValueError(f"the block size must be an even number of pixels, not {block}")
    if min(plane.shape) < block:
        raise ValueError(f"NIQE needs at least one {block}x{block} block; the image is "
                         f"{plane.shape[0]}x{plane.shape[1]}")
    plane = plane[: plane.shape[0] // block * block, : plane.shape[1] // block * block]
    coefficients, sigma = mscn(plane)
    sharpness = _blocks(sigma, block).mean(axis=(1, 2))
    fine = block_features(_blocks(coefficients, block))
    coarse = block_features(_blocks(mscn(imresize(plane, 0.5))[0], block // 2))
    return np.concatenate([fine, coarse], axis=1), sharpness


def _gaussian_fit(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (ignoring NaNs per feature) and covariance (of the rows without NaN), as MATLAB's
    `nanmean` and `nancov`; a single block has no spread, so its covariance is zero."""
    mean = np.nanmean(features, axis=0)
    complete = features[np.isfinite(features).all(axis=1)]
    if len(complete) < 2:
        return mean, np.zeros((features.shape[1], features.shape[1]))
    return mean, np.cov(complete, rowvar=False)


@dataclass(frozen=True)
class NIQEModel:
    """The multivariate Gaussian of pristine block features: `mean` (36,), `cov` (36, 36)."""

    mean: np.ndarray
    cov: np.ndarray

    def __post_init__(self) -> None:
        if self.mean.shape != (FEATURES,) or self.cov.shape != (FEATURES, FEATURES):
            raise ValueError(f"a NIQE model is a ({FEATURES},) mean and a ({FEATURES}, "
                             f"{FEATURES}) covariance, not {self.mean.shape} and {self.cov.shape}")
        if not (np.isfinite(self.mean).all() and np.isfinite(self.cov).all()):
            raise ValueError("the NIQE model holds NaN or infinite values")

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write it as .npz with the names of the authors' `modelparameters.mat`."""
        np.savez(path, mu_prisparam=self.mean, cov_prisparam=self.cov)


# Key names: the authors' .mat variables, and those of BasicSR's niqe_pris_params.npz.
_KEYS = (("mu_prisparam", "cov_prisparam"), ("mu_pris_param", "cov_pris_param"))


def default_model_path() -> Path:
    """Where the standard pristine model is looked for: niqe_pristine.npz in the weights
    folder (``$SUPERRES_WEIGHTS``)."""
    from superres.weights import weights_root

    return weights_root() / MODEL_FILE


def load_niqe_model(path: str | os.PathLike[str] | None = None) -> NIQEModel:
    """A pristine model from an .npz file (default: `default_model_path()`)."""
    file = Path(path) if path is not None else default_model_path()
    if not file.is_file():
        from superres.weights import weights_origin

        where = "" if path is not None else f" (weights folder from {weights_origin()})"
        raise WeightsNotFoundError(
            f"no NIQE pristine model: {file} does not exist{where}. The standard one is "
            f"modelparameters.mat in the authors' release {OFFICIAL_URL}; save its mu_prisparam "
            f"and cov_prisparam in an .npz as {MODEL_FILE}, or fit one from sharp images with "
            "superres.metrics.niqe.fit_niqe_model (such scores are not comparable with "
            "published NIQE)"
        )
    try:
        with np.load(file) as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, EOFError, TypeError, ValueError, zipfile.BadZipFile) as err:
        raise ValueError(f"{file} is not a NIQE model: not a readable .npz file of arrays "
                         f"({err})") from err
    for mean_key, cov_key in _KEYS:
        if mean_key in arrays and cov_key in arrays:
            return NIQEModel(np.asarray(arrays[mean_key], np.float64).reshape(-1),
                             np.asarray(arrays[cov_key], np.float64))
    names = ", ".join(sorted(arrays))
    raise ValueError(f"{file} is not a NIQE model: it needs mu_prisparam and cov_prisparam, "
                     f"it holds {names}")


def _images(source: Iterable[np.ndarray] | str | os.PathLike[str]) -> Iterable[np.ndarray]:
    if not isinstance(source, str | os.PathLike):
        return source
    from superres.data import dataset_images
    from superres.image.io import read_image

    return (read_image(path).pixels for path in dataset_images(source)[1])


def fit_niqe_model(
    images: Iterable[np.ndarray] | str | os.PathLike[str],
    *,
    block: int = BLOCK,
    sharpness_threshold: float = SHARPNESS_THRESHOLD,
    progress: bool = False,
) -> NIQEModel:
    """Fit a pristine model as the authors' `estimatemodelparam.m` does: from each image keep
    the blocks sharper than `sharpness_threshold` times its sharpest, and fit a Gaussian to
    all kept blocks' features.

    `images` are arrays in 0..255, or a folder (or registered set) of sharp, undistorted
    photographs. Images smaller than one block are passed over. Scores from such a model rank
    images, but are not comparable with NIQE numbers published with the authors' model.
    """
    if not 0 <= sharpness_threshold < 1:
        raise ValueError(f"sharpness_threshold must be in [0, 1), not {sharpness_threshold}")
    kept = []
    for image in tqdm(_images(images), desc="NIQE model", unit="img", disable=not progress):
        if min(np.shape(image)[:2]) < block:
            continue
        features, sharpness = image_features(image, block)
        kept.append(features[sharpness > sharpness_threshold * sharpness.max()])
    rows = np.concatenate(kept) if kept else np.empty((0, FEATURES))
    if np.isfinite(rows).all(axis=1).sum() < 2:
        raise ValueError(f"fitting a NIQE model needs at least two sharp {block}x{block} blocks "
                         f"without flat areas; these images gave {len(rows)}")
    return NIQEModel(*_gaussian_fit(rows))


def niqe(
    image: np.ndarray, model: NIQEModel | str | os.PathLike[str] | None = None, *,
    block: int = BLOCK,
) -> float:
    """NIQE of an image in 0..255 (H x W, or H x W x C colour: scored on Y); lower is more
    natural. `model` is a pristine model or its .npz file (default: the standard model in the
    weights folder, see `load_niqe_model`)."""
    if not isinstance(model, NIQEModel):
        model = load_niqe_model(model)
    mean, cov = _gaussian_fit(image_features(image, block)[0])
    if not np.isfinite(mean).all():
        raise ValueError("NIQE is undefined for this image: some feature is NaN in every block "
                         "(flat areas without negative or positive MSCN coefficients)")
    difference = model.mean - mean
    pooled = (model.cov + cov) / 2
    inverse = np.linalg.pinv(pooled, rcond=FEATURES * np.finfo(np.float64).eps)  # MATLAB's tol
    return float(np.sqrt(difference @ inverse @ difference))


class NIQEScore:
    """NIQE of the SR image alone (no reference), on Y; lower looks more
    natural. `model` is a pristine model or its .npz file; default: the standard model in the
    weights folder."""

    name = "niqe"

    def __init__(self, model: NIQEModel | str | os.PathLike[str] | None = None) -> None:
        self.model = model if isinstance(model, NIQEModel) else load_niqe_model(model)

    def __call__(self, sr: np.ndarray, hr: np.ndarray, scale: int) -> float:
        return niqe(shave(sr, scale), self.model)
