"""LR synthesis: how low-resolution inputs are made from HR images.

The classic "BI" degradation of the SR literature is MATLAB `imresize(hr, 1/s, 'bicubic')`
on the uint8 HR image, modcropped so that its size is a multiple of `s`, rounded back to
uint8. Training and evaluation both use these functions so the two never disagree.

Real photographs are degraded by more than a bicubic filter: optical and motion blur,
sensor noise, resampling and JPEG. The blocks of those (kernels, noise, JPEG) and the
randomised two-stage chain of Real-ESRGAN (Wang et al., "Real-ESRGAN: Training Real-World
Blind Super-Resolution with Pure Synthetic Data", ICCVW 2021) are below; they work on float
images in [0, 1], H x W or H x W x C, and draw every random choice from a NumPy Generator.

Recipes and evaluation name a degradation (`parse_degradation`): bicubic (the default), BD
and DN as RDN defines them, JPEG, the Real-ESRGAN chain, or a chain of those.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, ClassVar, Literal, get_type_hints

import numpy as np
from PIL import Image

from superres.image.resize import imresize

KernelType = Literal[
    "iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso"
]
KERNEL_TYPES: tuple[KernelType, ...] = (
    "iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso"
)
# Real-ESRGAN's 'area', 'bilinear' and 'bicubic' as `imresize` kernels (see `realistic_lr`).
RESIZE_KERNELS: tuple[str, ...] = ("box", "bilinear", "bicubic")


def modcrop(image: np.ndarray, scale: int) -> np.ndarray:
    """Crop H x W (x C) at the top-left origin to a multiple of `scale`, as MATLAB `modcrop`."""
    height, width = image.shape[:2]
    return image[: height - height % scale, : width - width % scale]


def to_uint(image: np.ndarray, dtype: np.dtype | type = np.uint8) -> np.ndarray:
    """Round and clip a float image in integer units to `dtype`, as MATLAB casts its results."""
    info = np.iinfo(dtype)
    return np.clip(np.round(image), info.min, info.max).astype(dtype)


def bicubic_lr(hr: np.ndarray, scale: int) -> np.ndarray:
    """The standard BI low-resolution image of an integer HR image (modcropped first)."""
    if not np.issubdtype(hr.dtype, np.integer):
        raise TypeError(f"expected an integer (uint8/uint16) HR image, got {hr.dtype}")
    hr = modcrop(hr, scale)
    if min(hr.shape[:2]) < scale:
        raise ValueError(f"image of size {hr.shape[:2]} is too small for scale {scale}")
    return to_uint(imresize(hr, 1 / scale), hr.dtype)


# ----------------------------------------------------------------------------- blur kernels


def covariance_matrix(sigma_x: float, sigma_y: float, theta: float) -> np.ndarray:
    """R diag(sigma_x², sigma_y²) Rᵀ: a Gaussian's covariance in (x = column, y = row) order.

    `theta` (radians) turns the sigma_x axis from +x towards +y (rows grow downwards).
    """
    cos, sin = math.cos(theta), math.sin(theta)
    rotation = np.array([[cos, -sin], [sin, cos]])
    return rotation @ np.diag([sigma_x**2, sigma_y**2]) @ rotation.T


def _offsets(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Column (x) and row (y) offsets from the centre of an odd size x size kernel."""
    if size < 1 or size % 2 == 0:
        raise ValueError(f"kernel size must be odd and positive (centred on a pixel), got {size}")
    axis = np.arange(size) - (size - 1) / 2
    y, x = np.meshgrid(axis, axis, indexing="ij")
    return x, y


def _mahalanobis2(size: int, sigma_x: float, sigma_y: float, theta: float) -> np.ndarray:
    """Squared Mahalanobis distance of each kernel tap for the covariance above."""
    if min(sigma_x, sigma_y) <= 0:
        raise ValueError(f"sigmas must be positive, got {sigma_x}, {sigma_y}")
    x, y = _offsets(size)
    inverse = np.linalg.inv(covariance_matrix(sigma_x, sigma_y, theta))
    return inverse[0, 0] * x * x + 2 * inverse[0, 1] * x * y + inverse[1, 1] * y * y


def _normalised(kernel: np.ndarray) -> np.ndarray:
    return kernel / kernel.sum()


def gaussian_kernel(
    size: int, sigma_x: float, sigma_y: float | None = None, theta: float = 0.0
) -> np.ndarray:
    """Optical blur: a (possibly anisotropic, rotated) Gaussian, odd size, summing to 1.

    `sigma_y=None` gives the isotropic kernel; see `covariance_matrix` for the axes.
    """
    sigma_y = sigma_x if sigma_y is None else sigma_y
    return _normalised(np.exp(-0.5 * _mahalanobis2(size, sigma_x, sigma_y, theta)))


def generalized_gaussian_kernel(
    size: int, sigma_x: float, sigma_y: float, theta: float, beta: float
) -> np.ndarray:
    """exp(-½ (xᵀΣ⁻¹x)^beta): flatter top (beta > 1) or heavier tails (beta < 1) than a Gaussian.

    Real-ESRGAN's "generalized" kernels (Liu et al. 2021); beta = 1 is `gaussian_kernel`.
    """
    return _normalised(np.exp(-0.5 * _mahalanobis2(size, sigma_x, sigma_y, theta) ** beta))


def plateau_kernel(
    size: int, sigma_x: float, sigma_y: float, theta: float, beta: float
) -> np.ndarray:
    """1 / (1 + (xᵀΣ⁻¹x)^beta): a flat top with slowly decaying tails, as in Real-ESRGAN."""
    return _normalised(1 / (1 + _mahalanobis2(size, sigma_x, sigma_y, theta) ** beta))


def _bessel_j1(x: np.ndarray) -> np.ndarray:
    """J1 by Bessel's integral, (1/2π)∫ cos(τ - x sin τ) dτ over one period.

    The trapezoid rule is exact to rounding for periodic integrands once its step count
    passes |x|, so this needs no SciPy.
    """
    steps = int(np.max(np.abs(x), initial=0)) + 64
    tau = np.arange(steps) * (2 * np.pi / steps)
    return np.mean(np.cos(tau - np.multiply.outer(x, np.sin(tau))), axis=-1)


def sinc_kernel(size: int, cutoff: float) -> np.ndarray:
    """An ideal circular low-pass filter (cutoff in radians/pixel, up to π), cut to size.

    Its truncation makes the ringing and overshoot of sharpened, resampled photos; Real-ESRGAN
    adds it so a model learns to remove them.
    """
    if not 0 < cutoff <= np.pi:
        raise ValueError(f"cutoff must be in (0, π], got {cutoff}")
    x, y = _offsets(size)
    radius = np.hypot(x, y)
    with np.errstate(invalid="ignore", divide="ignore"):
        kernel = cutoff * _bessel_j1(cutoff * radius) / (2 * np.pi * radius)
    kernel[radius == 0] = cutoff**2 / (4 * np.pi)
    return _normalised(kernel)


def _splat(points: np.ndarray, size: int) -> np.ndarray:
    """Density of (x, y) points (offsets from the centre) on a size x size grid, bilinearly.

    Bilinear splatting keeps the points' mean, so a centred path gives a blur without shift.
    """
    position = points + (size - 1) / 2
    base = np.floor(position).astype(np.int64)
    frac = position - base
    kernel = np.zeros(size * size)
    for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
        weight = np.abs(1 - dx - frac[:, 0]) * np.abs(1 - dy - frac[:, 1])
        col, row = base[:, 0] + dx, base[:, 1] + dy
        inside = (col >= 0) & (col < size) & (row >= 0) & (row < size) & (weight > 0)
        kernel += np.bincount(
            row[inside] * size + col[inside], weights=weight[inside], minlength=size * size
        )
    return _normalised(kernel.reshape(size, size))


def motion_line_kernel(length: float, angle: float, size: int | None = None) -> np.ndarray:
    """Uniform linear motion blur: the camera moved `length` px along `angle` during exposure.

    `angle` (radians) is measured from +x towards +y, like `covariance_matrix`; the smallest
    odd size holding the line is used by default.
    """
    if length < 0:
        raise ValueError(f"length must be non-negative, got {length}")
    size = size or 2 * math.ceil(length / 2) + 3
    samples = max(2, math.ceil(32 * length))
    t = (np.arange(samples) + 0.5) / samples * length - length / 2
    points = np.stack([t * math.cos(angle), t * math.sin(angle)], axis=1)
    return _splat(points, size)


def motion_trajectory_kernel(
    size: int, rng: np.random.Generator, length: float | None = None, steps: int = 512
) -> np.ndarray:
    """Camera shake: a random smooth, jerky path (Boracchi & Foi, IEEE TIP 2012), centred.

    The path is a particle with inertia pulled back to its start and kicked by Gaussian and,
    rarely, large impulsive shakes; its total length defaults to a random size/4..size/2.
    """
    length = rng.uniform(size / 4, size / 2) if length is None else length
    anxiety = 0.1 * rng.uniform()
    centripetal = 0.7 * rng.uniform()
    big_shake = 0.2 * rng.uniform()
    gaussian_shake = 10 * rng.uniform()
    step = length / (steps - 1)
    velocity = step * np.exp(1j * rng.uniform(0, 2 * np.pi))
    path = np.zeros(steps, dtype=np.complex128)
    kicks = rng.uniform(size=steps) < big_shake * anxiety
    turns = rng.uniform(-0.5, 0.5, size=steps)
    shakes = rng.standard_normal(steps) + 1j * rng.standard_normal(steps)
    for t in range(steps - 1):  # a recursion in time, not a loop over pixels
        kick = 2 * velocity * np.exp(1j * (np.pi + turns[t])) if kicks[t] else 0
        velocity += kick + anxiety * (gaussian_shake * shakes[t] - centripetal * path[t]) * step
        velocity *= step / abs(velocity)
        path[t + 1] = path[t] + velocity
    path -= path.mean()
    extent = np.max(np.abs(np.concatenate([path.real, path.imag])))
    path *= min(1.0, (size - 1) / 2 / max(extent, 1e-12))
    return _splat(np.stack([path.real, path.imag], axis=1), size)


def blur(
    image: np.ndarray, kernel: np.ndarray, border: Literal["reflect", "replicate"] = "reflect"
) -> np.ndarray:
    """Convolve each channel with an odd-sized kernel, padding the borders (float64).

    Reflect padding as Real-ESRGAN's `filter2D`, replicate as MATLAB's `imfilter(...,
    'replicate')`; computed with FFTs so that 21 x 21 kernels cost no more than 3 x 3 ones.
    """
    if kernel.ndim != 2 or kernel.shape[0] % 2 == 0 or kernel.shape[1] % 2 == 0:
        raise ValueError(f"expected an odd-sized 2-D kernel, got shape {kernel.shape}")
    pad_y, pad_x = kernel.shape[0] // 2, kernel.shape[1] // 2
    planes = np.atleast_3d(np.asarray(image, dtype=np.float64))
    mode = {"reflect": "reflect", "replicate": "edge"}[border]
    padded = np.pad(planes, ((pad_y, pad_y), (pad_x, pad_x), (0, 0)), mode=mode)
    shape = padded.shape[:2]
    placed = np.zeros(shape)
    placed[: kernel.shape[0], : kernel.shape[1]] = kernel
    placed = np.roll(placed, (-pad_y, -pad_x), axis=(0, 1))  # kernel centre at the origin
    spectrum = np.fft.rfft2(padded, axes=(0, 1)) * np.fft.rfft2(placed)[..., None]
    out = np.fft.irfft2(spectrum, s=shape, axes=(0, 1))
    out = out[pad_y : pad_y + planes.shape[0], pad_x : pad_x + planes.shape[1]]
    return out.reshape(np.shape(image))


# ----------------------------------------------------------------------------- noise, JPEG


def _luma(image: np.ndarray) -> np.ndarray:
    """Full-range BT.601 luma (OpenCV's RGB2GRAY), the gray image Real-ESRGAN adds noise to."""
    if image.ndim == 2 or image.shape[2] == 1:
        return image.reshape(image.shape[:2])
    return image[..., :3] @ np.array([0.299, 0.587, 0.114])


def _noise_shape(image: np.ndarray, gray: bool) -> tuple[int, ...]:
    """One noise plane shared by every channel (gray noise) or one per channel."""
    if gray and image.ndim == 3:
        return (*image.shape[:2], 1)
    return image.shape


def add_gaussian_noise(
    image: np.ndarray, sigma: float, rng: np.random.Generator, gray: bool = False
) -> np.ndarray:
    """Read noise: add N(0, sigma²) in the image's units; `gray` gives every channel the same.

    Not clipped, so the noise statistics stay exact; clip where the pipeline would.
    """
    image = np.asarray(image, dtype=np.float64)
    return image + sigma * rng.standard_normal(_noise_shape(image, gray))


def add_poisson_noise(
    image: np.ndarray, scale: float, rng: np.random.Generator, gray: bool = False
) -> np.ndarray:
    """Shot noise whose variance grows with intensity, as Real-ESRGAN draws it.

    For an image in [0, 1] quantised to 8 bits with n distinct values, the photon count is
    intensity x 2^ceil(log2 n); the noise (count / that - intensity) is multiplied by `scale`,
    so its variance is scale² x intensity / 2^ceil(log2 n). `gray` draws it on the luma and
    adds the same noise to every channel. Not clipped.
    """
    image = np.asarray(image, dtype=np.float64)
    source = _luma(image) if gray and image.ndim == 3 else image
    source = np.clip(np.round(source * 255), 0, 255) / 255
    levels = 2.0 ** math.ceil(math.log2(len(np.unique(source))))
    noise = rng.poisson(source * levels) / levels - source
    if gray and image.ndim == 3:
        noise = noise[..., None]
    return image + scale * noise


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """Encode with Pillow's JPEG at `quality` (1-95; 4:2:0 chroma for colour) and decode.

    Takes and returns a float image in [0, 1]; it is rounded to 8 bits first, as JPEG is.
    """
    if not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be in 1..100, got {quality}")
    shape = np.shape(image)
    pixels = to_uint(np.asarray(image, dtype=np.float64) * 255)
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=int(quality))
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return (np.asarray(decoded, dtype=np.float64) / 255).reshape(shape)


# ----------------------------------------------------------------------------- Real-ESRGAN chain


def _check_range(name: str, bounds: tuple[float, float], low: float, high: float) -> None:
    if len(bounds) != 2 or not low <= bounds[0] <= bounds[1] <= high:
        raise ValueError(f"{name} must be (low, high) with {low} <= low <= high <= {high}")


def _check_probabilities(name: str, probabilities: tuple[float, ...], count: int) -> None:
    if len(probabilities) != count or min(probabilities) < 0:
        raise ValueError(f"{name} must hold {count} non-negative probabilities")
    if not math.isclose(sum(probabilities), 1.0, abs_tol=1e-9):
        raise ValueError(f"{name} must sum to 1, got {sum(probabilities)}")


@dataclass(frozen=True)
class DegradationStage:
    """Ranges of one blur -> resize -> noise -> JPEG stage (Real-ESRGAN's first by default).

    Noise sigmas are in 8-bit grey levels; `resize_prob` is (up, down, keep); betas shape the
    generalized (`betag_range`) and plateau (`betap_range`) kernels.
    """

    blur_prob: float = 1.0
    kernel_sizes: tuple[int, ...] = (7, 9, 11, 13, 15, 17, 19, 21)
    kernel_types: tuple[KernelType, ...] = KERNEL_TYPES
    kernel_probs: tuple[float, ...] = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)
    sinc_prob: float = 0.1
    blur_sigma: tuple[float, float] = (0.2, 3.0)
    betag_range: tuple[float, float] = (0.5, 4.0)
    betap_range: tuple[float, float] = (1.0, 2.0)
    resize_prob: tuple[float, float, float] = (0.2, 0.7, 0.1)
    resize_range: tuple[float, float] = (0.15, 1.5)
    gaussian_noise_prob: float = 0.5
    noise_range: tuple[float, float] = (1.0, 30.0)
    poisson_scale_range: tuple[float, float] = (0.05, 3.0)
    gray_noise_prob: float = 0.4
    jpeg_range: tuple[float, float] = (30.0, 95.0)

    def __post_init__(self) -> None:
        for name in ("blur_prob", "sinc_prob", "gaussian_noise_prob", "gray_noise_prob"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be a probability, got {getattr(self, name)}")
        if not self.kernel_sizes or any(s < 1 or s % 2 == 0 for s in self.kernel_sizes):
            raise ValueError(f"kernel_sizes must be odd and positive, got {self.kernel_sizes}")
        unknown = set(self.kernel_types) - set(KERNEL_TYPES)
        if unknown:
            raise ValueError(f"unknown kernel types {sorted(unknown)}; known: {KERNEL_TYPES}")
        _check_probabilities("kernel_probs", self.kernel_probs, len(self.kernel_types))
        _check_probabilities("resize_prob", self.resize_prob, 3)
        _check_range("blur_sigma", self.blur_sigma, 1e-6, math.inf)
        _check_range("betag_range", self.betag_range, 1e-6, math.inf)
        _check_range("betap_range", self.betap_range, 1e-6, math.inf)
        _check_range("resize_range", self.resize_range, 1e-6, math.inf)
        if not self.resize_range[0] <= 1 <= self.resize_range[1]:
            raise ValueError(f"resize_range must contain 1, got {self.resize_range}")
        _check_range("noise_range", self.noise_range, 0, math.inf)
        _check_range("poisson_scale_range", self.poisson_scale_range, 0, math.inf)
        _check_range("jpeg_range", self.jpeg_range, 1, 100)


FIRST_STAGE = DegradationStage()
SECOND_STAGE = DegradationStage(
    blur_prob=0.8,
    blur_sigma=(0.2, 1.5),
    resize_prob=(0.3, 0.4, 0.3),
    resize_range=(0.3, 1.2),
    noise_range=(1.0, 25.0),
    poisson_scale_range=(0.05, 2.5),
)


@dataclass(frozen=True)
class DegradationChain:
    """Real-ESRGAN's two-stage degradation (its `train_realesrnet_x4plus.yml` defaults).

    `final_sinc_prob` is the chance of the sinc filter that follows the final resize.
    """

    scale: int = 4
    first: DegradationStage = FIRST_STAGE
    second: DegradationStage = SECOND_STAGE
    final_sinc_prob: float = 0.8

    def __post_init__(self) -> None:
        if self.scale < 1:
            raise ValueError(f"scale must be a positive integer, got {self.scale}")
        if not 0 <= self.final_sinc_prob <= 1:
            raise ValueError(f"final_sinc_prob must be a probability, got {self.final_sinc_prob}")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> DegradationChain:
        """Build from a recipe's mapping; a misspelt key raises TypeError instead of hiding."""
        stages = {"first": FIRST_STAGE, "second": SECOND_STAGE}
        kwargs: dict[str, Any] = {}
        for key, value in values.items():
            if key in stages and isinstance(value, Mapping):
                known = {f.name: getattr(stages[key], f.name) for f in fields(DegradationStage)}
                unknown = set(value) - set(known)
                if unknown:
                    raise TypeError(f"unknown keys in {key!r}: {sorted(unknown)}")
                known.update({k: tuple(v) if isinstance(v, list) else v for k, v in value.items()})
                value = DegradationStage(**known)
            kwargs[key] = value
        return cls(**kwargs)


def _uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def _shape_beta(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    """Half the draws below 1 and half above, so both tail shapes are equally common."""
    if rng.uniform() < 0.5:
        return _uniform(rng, (bounds[0], 1.0))
    return _uniform(rng, (1.0, bounds[1]))


def random_kernel(stage: DegradationStage, rng: np.random.Generator) -> np.ndarray:
    """One blur kernel drawn as Real-ESRGAN draws it: a sinc, or one of the six Gaussian kinds."""
    size = int(rng.choice(stage.kernel_sizes))
    if rng.uniform() < stage.sinc_prob:
        low = np.pi / 3 if size < 13 else np.pi / 5
        return sinc_kernel(size, _uniform(rng, (low, np.pi)))
    kind = stage.kernel_types[rng.choice(len(stage.kernel_types), p=stage.kernel_probs)]
    sigma_x = _uniform(rng, stage.blur_sigma)
    if "aniso" not in kind:
        sigma_y, theta = sigma_x, 0.0
    else:
        sigma_y, theta = _uniform(rng, stage.blur_sigma), _uniform(rng, (-np.pi, np.pi))
    if kind.startswith("generalized"):
        return generalized_gaussian_kernel(
            size, sigma_x, sigma_y, theta, _shape_beta(rng, stage.betag_range)
        )
    if kind.startswith("plateau"):
        return plateau_kernel(size, sigma_x, sigma_y, theta, _shape_beta(rng, stage.betap_range))
    return gaussian_kernel(size, sigma_x, sigma_y, theta)


def _random_resize(
    image: np.ndarray, stage: DegradationStage, rng: np.random.Generator, base: tuple[float, float]
) -> np.ndarray:
    """Resize `base` (a size) by a random up/down/keep factor with a random interpolation."""
    direction = rng.choice(3, p=stage.resize_prob)
    factor = (
        _uniform(rng, (1.0, stage.resize_range[1])),
        _uniform(rng, (stage.resize_range[0], 1.0)),
        1.0,
    )[direction]
    kernel = RESIZE_KERNELS[rng.integers(len(RESIZE_KERNELS))]
    size = (max(1, int(base[0] * factor)), max(1, int(base[1] * factor)))
    return imresize(image, size=size, kernel=kernel)


def _random_noise(
    image: np.ndarray, stage: DegradationStage, rng: np.random.Generator
) -> np.ndarray:
    """Gaussian or Poisson noise (one channel or all alike), then clipped as a sensor would."""
    if rng.uniform() < stage.gaussian_noise_prob:
        sigma = _uniform(rng, stage.noise_range) / 255
        noisy = add_gaussian_noise(image, sigma, rng, gray=rng.uniform() < stage.gray_noise_prob)
    else:
        scale = _uniform(rng, stage.poisson_scale_range)
        noisy = add_poisson_noise(image, scale, rng, gray=rng.uniform() < stage.gray_noise_prob)
    return np.clip(noisy, 0, 1)


def _random_jpeg(
    image: np.ndarray, stage: DegradationStage, rng: np.random.Generator
) -> np.ndarray:
    return jpeg(image, round(_uniform(rng, stage.jpeg_range)))


def _final_sinc(chain: DegradationChain, rng: np.random.Generator) -> np.ndarray | None:
    if rng.uniform() >= chain.final_sinc_prob:
        return None
    return sinc_kernel(int(rng.choice(chain.first.kernel_sizes)), _uniform(rng, (np.pi / 3, np.pi)))


def realistic_lr(
    hr: np.ndarray, rng: np.random.Generator, chain: DegradationChain | None = None
) -> np.ndarray:
    """A Real-ESRGAN-degraded LR image of size (H // scale, W // scale) from an HR image.

    Stage one: blur, random resize, noise, JPEG. Stage two: maybe blur, random resize
    (relative to the LR size), noise, then in random order either [resize to the LR size +
    sinc, JPEG] or [JPEG, resize + sinc]. uint8 in gives uint8 out; a float image in [0, 1]
    gives float64 on the 8-bit grid, as Real-ESRGAN rounds its LR. Every draw comes from
    `rng`, so the same seed gives the same LR.
    """
    chain = chain or DegradationChain()
    if hr.dtype == np.uint8:
        image = hr.astype(np.float64) / 255
    elif np.issubdtype(hr.dtype, np.floating):
        image = np.asarray(hr, dtype=np.float64)
    else:
        raise TypeError(f"expected a uint8 or float image in [0, 1], got {hr.dtype}")
    height, width = image.shape[:2]
    target = (height // chain.scale, width // chain.scale)
    if min(target) < 1:
        raise ValueError(f"image of size {(height, width)} is too small for scale {chain.scale}")
    sinc = _final_sinc(chain, rng)

    image = blur(image, random_kernel(chain.first, rng))
    image = _random_resize(image, chain.first, rng, (height, width))
    image = _random_jpeg(_random_noise(image, chain.first, rng), chain.first, rng)

    if rng.uniform() < chain.second.blur_prob:
        image = blur(image, random_kernel(chain.second, rng))
    image = _random_resize(image, chain.second, rng, (height / chain.scale, width / chain.scale))
    image = _random_noise(image, chain.second, rng)
    kernel = RESIZE_KERNELS[rng.integers(len(RESIZE_KERNELS))]
    jpeg_first = rng.uniform() >= 0.5
    if jpeg_first:
        image = _random_jpeg(image, chain.second, rng)
    image = imresize(image, size=target, kernel=kernel)
    if sinc is not None:
        image = blur(image, sinc)
    if not jpeg_first:
        image = _random_jpeg(np.clip(image, 0, 1), chain.second, rng)

    image = np.clip(np.round(image * 255), 0, 255)
    return image.astype(np.uint8) if hr.dtype == np.uint8 else image / 255


def validation_lr(
    hr: np.ndarray, index: int, seed: int = 0, chain: DegradationChain | None = None
) -> np.ndarray:
    """`realistic_lr` seeded by (seed, image index): the same validation set on every run.

    Each image gets its own stream, so adding, removing or reordering other images does not
    change it.
    """
    return realistic_lr(hr, np.random.default_rng([seed, index]), chain)


# ----------------------------------------------------------------------------- named degradations
#
# What a recipe's `degradation:` and `superres eval --degradation` name (docs/degradations.md).
# Each is a frozen dataclass of its typed parameters, called as (uint8 HR modcropped to the
# scale, scale, rng) -> uint8 LR of size (H / scale, W / scale), rounded to 8-bit levels like
# an image saved to disk; `Degradation` chains them.


def _bd_kernel_size(scale: int, sigma: float) -> int:
    """The kernel size of RDN's `imresize_BD`: 7 at x3 with sigma 1.6, else 2⌈3σ⌉+1 for odd
    scales and 2⌈3σ⌉+2 for even ones."""
    if scale == 3 and sigma == 1.6:
        return 7
    return 2 * math.ceil(3 * sigma) + (1 if scale % 2 else 2)


@dataclass(frozen=True)
class Bicubic:
    """BI, the literature's standard: exactly `bicubic_lr` (MATLAB bicubic, rounded)."""

    name: ClassVar[str] = "bicubic"
    resizes: ClassVar[bool] = True

    def __call__(self, hr: np.ndarray, scale: int, rng: np.random.Generator) -> np.ndarray:
        return bicubic_lr(hr, scale)


@dataclass(frozen=True)
class BlurDownsample:
    """BD: Gaussian blur of width `sigma`, then one pixel kept per scale x scale block.

    As `imresize_BD` of RDN's test code (RDN_TestCode/Prepare_TestData_HR_LR.m; Y. Zhang et
    al., CVPR 2018), taken from SRMD's (K. Zhang et al., CVPR 2018) and at x3 the same as RDN's
    training data code: `imfilter(hr, fspecial('gaussian', k, sigma), 'replicate')` on uint8
    (so rounded), then direct decimation, not bicubic: `imresize(.., 1/s, 'nearest')`, the
    centre pixel of each block, for odd s; rows and columns s/2:s:end for even s, whose even
    kernel is centred between pixels, so that again the block's centre is sampled.
    `kernel_size` None is that code's size: 7 at x3 with sigma 1.6 (RDN's training and test
    setting), else 2⌈3σ⌉+1 for odd and 2⌈3σ⌉+2 for even scales; a size of the other parity
    than the scale shifts the LR by half an HR pixel.
    """

    sigma: float = 1.6
    kernel_size: int | None = None
    name: ClassVar[str] = "blur-downsample"
    resizes: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if self.sigma <= 0:
            raise ValueError(f"blur-downsample sigma must be positive, got {self.sigma}")
        if self.kernel_size is not None and self.kernel_size < 1:
            raise ValueError(f"blur-downsample kernel_size must be positive, got "
                             f"{self.kernel_size}")

    def __call__(self, hr: np.ndarray, scale: int, rng: np.random.Generator) -> np.ndarray:
        size = self.kernel_size or _bd_kernel_size(scale, self.sigma)
        taps = np.exp(-0.5 * ((np.arange(size) - (size - 1) / 2) / self.sigma) ** 2)
        kernel = np.outer(taps, taps) / taps.sum() ** 2  # fspecial('gaussian', size, sigma)
        # imfilter correlates, centring the kernel on its tap (size - 1) // 2: for this
        # symmetric kernel, `blur`'s convolution once an even one gets a zero row and column
        # after it.
        kernel = np.pad(kernel, ((0, 1 - size % 2),) * 2)
        blurred = to_uint(blur(hr, kernel, border="replicate"), hr.dtype)
        first = (scale - 1) // 2
        return blurred[first::scale, first::scale]


@dataclass(frozen=True)
class DownsampleNoise:
    """DN: bicubic (`bicubic_lr`), then white Gaussian noise of `sigma` grey levels (of 255)
    drawn per pixel and channel, rounded and clipped: RDN's `imresize_DN`, whose level is 30."""

    sigma: float = 30.0
    name: ClassVar[str] = "downsample-noise"
    resizes: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if self.sigma < 0:
            raise ValueError(f"downsample-noise sigma must be non-negative, got {self.sigma}")

    def __call__(self, hr: np.ndarray, scale: int, rng: np.random.Generator) -> np.ndarray:
        lr = bicubic_lr(hr, scale)
        return to_uint(add_gaussian_noise(lr, self.sigma, rng), lr.dtype)


@dataclass(frozen=True)
class Jpeg:
    """JPEG at `quality` (Pillow, 4:2:0 chroma) of the image at its current size.

    It keeps the size: in a chain it compresses what comes before it (after the downscaling:
    the LR, as a compressed photo reaches the model); alone it means bicubic then JPEG. 75 is
    libjpeg's and Pillow's default quality, what an image saved without settings gets.
    """

    quality: int = 75
    name: ClassVar[str] = "jpeg"
    resizes: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if not 1 <= self.quality <= 100:
            raise ValueError(f"jpeg quality must be in 1..100, got {self.quality}")

    def __call__(self, hr: np.ndarray, scale: int, rng: np.random.Generator) -> np.ndarray:
        return to_uint(jpeg(hr / 255, self.quality) * 255)


@dataclass(frozen=True)
class Noise:
    """White Gaussian noise of `sigma` grey levels (of 255) per pixel and channel, rounded and
    clipped, at the current size: in a chain after the downscaling it is sensor noise of the
    LR, as `downsample-noise` but after any blur (alone it means bicubic then noise)."""

    sigma: float = 10.0
    name: ClassVar[str] = "noise"
    resizes: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if self.sigma < 0:
            raise ValueError(f"noise sigma must be non-negative, got {self.sigma}")

    def __call__(self, hr: np.ndarray, scale: int, rng: np.random.Generator) -> np.ndarray:
        return to_uint(add_gaussian_noise(hr, self.sigma, rng), hr.dtype)


@dataclass(frozen=True)
class RealESRGAN:
    """Real-ESRGAN's random two-stage chain (`realistic_lr`) with its defaults: `first` and
    `second` override fields of the stages (`DegradationStage`), `final_sinc_prob` is the
    chance of the sinc filter after the final resize."""

    first: DegradationStage = FIRST_STAGE
    second: DegradationStage = SECOND_STAGE
    final_sinc_prob: float = 0.8
    name: ClassVar[str] = "realesrgan"
    resizes: ClassVar[bool] = True

    def __post_init__(self) -> None:
        self.chain(1)  # checks final_sinc_prob

    def chain(self, scale: int) -> DegradationChain:
        return DegradationChain(scale, self.first, self.second, self.final_sinc_prob)

    def __call__(self, hr: np.ndarray, scale: int, rng: np.random.Generator) -> np.ndarray:
        return realistic_lr(hr, rng, self.chain(scale))


Step = Bicubic | BlurDownsample | DownsampleNoise | Jpeg | Noise | RealESRGAN
DEGRADATIONS: dict[str, type[Step]] = {
    cls.name: cls for cls in (Bicubic, BlurDownsample, DownsampleNoise, Jpeg, Noise, RealESRGAN)
}


@dataclass(frozen=True)
class Degradation:
    """Named degradations applied in order, of which exactly one changes the size; where
    none does (`jpeg` alone), bicubic comes first."""

    steps: tuple[Step, ...] = (Bicubic(),)

    def __post_init__(self) -> None:
        resizing = [step.name for step in self.steps if step.resizes]
        if not self.steps:
            raise ValueError("an empty chain: name at least one degradation")
        if len(resizing) > 1:
            raise ValueError(f"a chain downscales once, but {', '.join(resizing)} all do; "
                             f"the others in a chain (jpeg) keep the size")

    @property
    def is_bicubic(self) -> bool:
        """Whether this is plain bicubic, whose LR is the same for every draw."""
        return self.steps == (Bicubic(),)

    def __call__(self, hr: np.ndarray, scale: int, rng: np.random.Generator) -> np.ndarray:
        """The LR of `hr` (uint8, or float in [0, 1], rounded to 8 bits first), modcropped to
        `scale`: uint8 in, uint8 out; float in, float64 on the 8-bit grid out. Every random
        choice comes from `rng`, so the same seed gives the same LR."""
        floating = np.issubdtype(hr.dtype, np.floating)
        image = to_uint(np.asarray(hr, dtype=np.float64) * 255) if floating else hr
        if image.dtype != np.uint8 and not self.is_bicubic:
            raise TypeError(f"expected a uint8 or float image in [0, 1], got {hr.dtype}")
        image = modcrop(image, scale)
        if min(image.shape[:2]) < scale:
            raise ValueError(f"image of size {image.shape[:2]} is too small for scale {scale}")
        steps = self.steps if any(step.resizes for step in self.steps) else (Bicubic(),
                                                                              *self.steps)
        for step in steps:
            image = step(image, scale, rng)
        return image / 255 if floating else image

    def of_image(self, hr: np.ndarray, scale: int, name: str) -> np.ndarray:
        """The LR of the image called `name`, drawn from that name's own seed (`image_seed`):
        the same LR on every run and machine, as benchmarks need."""
        return self(hr, scale, np.random.default_rng(image_seed(name)))

    def spec(self) -> str | dict[str, Any] | list[str | dict[str, Any]]:
        """The plain form `parse_degradation` reads back (for JSON reports and logs): a name
        where the parameters are the defaults, else a mapping of the others; a list for a
        chain."""
        specs = [_step_spec(step) for step in self.steps]
        return specs[0] if len(specs) == 1 else specs

    def __str__(self) -> str:
        spec = self.spec()
        return spec if isinstance(spec, str) else json.dumps(spec)


def _step_spec(step: Step) -> str | dict[str, Any]:
    params = {}
    for item in fields(step):
        value, default = getattr(step, item.name), item.default
        if isinstance(value, DegradationStage):
            value = {k: v for k, v in asdict(value).items() if v != getattr(default, k)}
            default = {}
        if value != default:
            params[item.name] = value
    return {"name": step.name, **params} if params else step.name


DegradationSpec = str | Mapping[str, Any] | Sequence[str | Mapping[str, Any]] | Degradation


def parse_degradation(value: DegradationSpec, where: str = "degradation") -> Degradation:
    """A `Degradation` from a recipe's or command line's value.

    `value` is a name (`blur-downsample`), a name with parameters (`jpeg:quality=40`), a
    mapping (`{name: jpeg, quality: 40}`) or a list of those chained in order; in a string,
    `+` chains (`blur-downsample+jpeg:quality=40`). A mistake is a one-line ValueError that
    starts with `where` and names the known names or parameters.
    """
    if isinstance(value, Degradation):
        return value
    if isinstance(value, str):
        items: list[Any] = value.split("+")
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        items = [value]
    steps = tuple(_parse_step(item, f"{where}[{i}]" if len(items) > 1 else where)
                  for i, item in enumerate(items))
    try:
        return Degradation(steps)
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None


def _parse_step(item: Any, where: str) -> Step:
    """One named degradation from `name`, `name:key=value,...` or `{name: ..., key: value}`."""
    known = ", ".join(DEGRADATIONS)
    if isinstance(item, str):
        name, _, text = item.partition(":")
        params = _text_params(text, where) if text.strip() else {}
    elif isinstance(item, Mapping):
        params = dict(item)
        name = params.pop("name", None)
    else:
        raise ValueError(f"{where}: expected a name, a mapping with a name or a list of them, "
                         f"not {item!r}")
    if name is None:
        raise ValueError(f"{where}: a mapping needs a name: one of {known}")
    if not isinstance(name, str) or name.strip() not in DEGRADATIONS:
        raise ValueError(f"{where}: unknown degradation {name!r}; known: {known}")
    cls = DEGRADATIONS[name.strip()]
    defaults = {f.name: f.default for f in fields(cls)}
    unknown = sorted(set(params) - set(defaults), key=str)
    if unknown:
        raise ValueError(f"{where}: unknown parameter(s) {', '.join(map(str, unknown))} of "
                         f"{cls.name}; known: {', '.join(defaults) or 'none'}")
    hints = get_type_hints(cls)
    kwargs = {key: _param(value, hints[key], defaults[key], f"{where}.{key}")
              for key, value in params.items()}
    try:
        return cls(**kwargs)
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None


def _text_params(text: str, where: str) -> dict[str, Any]:
    """`key=value,key=value`, each value read as JSON (numbers, null) or else kept as text."""
    params: dict[str, Any] = {}
    for pair in text.split(","):
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{where}: write NAME:key=value,key=value, not {pair!r}")
        try:
            params[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            params[key.strip()] = raw.strip()
    return params


def _param(value: Any, hint: Any, default: Any, where: str) -> Any:
    """`value` as the parameter's type wants it (ints pass as floats), or a ValueError."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is float and number:
        return float(value)
    if (hint is int or hint == int | None) and isinstance(value, int) and number:
        return value
    if hint == int | None and value is None:
        return None
    if hint is DegradationStage and isinstance(value, Mapping):
        return _stage(value, default, where)
    wanted = {float: "a number", int: "an integer", int | None: "an integer or null",
              DegradationStage: "a mapping"}[hint]
    raise ValueError(f"{where} must be {wanted}, not {value!r}")


def _stage(values: Mapping[str, Any], default: DegradationStage, where: str) -> DegradationStage:
    """`default` with the fields of `values` replaced (lists read as tuples)."""
    names = [f.name for f in fields(DegradationStage)]
    unknown = sorted(set(values) - set(names), key=str)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(map(str, unknown))}; known: "
                         f"{', '.join(names)}")
    changes = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    try:
        return replace(default, **changes)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: {err}") from None


def image_seed(name: str) -> int:
    """A seed fixed by an image's file name (a digest, not Python's salted `hash`), so that
    a random degradation gives each image the same LR on every run and machine."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")
