"""Multi-frame (burst) super-resolution by reconstruction: registration and five classic solvers.

Several LR frames of one scene, each shifted by a different sub-pixel amount, sample it more
densely than any one of them; reconstruction-based SR inverts the imaging model

    y_k = D B W_k x + n_k        (Elad & Feuer, IEEE TIP 1997)

where x is the HR image, W_k the motion of frame k, B the camera blur (PSF), D decimation by
the scale and n_k noise. Here D B is MATLAB's antialiased bicubic `imresize(·, 1/s)`
(optionally after a Gaussian PSF), so that frame 0 of a still burst is the standard BI LR
image. All images are float64 planes; loops run over frames, taps or iterations, never pixels.

Motion convention: `motion[k] = (dy, dx, theta)` says that pixel p = (row, col) of frame k
shows the reference frame's point R(theta)(p - c) + c + (dy, dx), in LR pixels, with c the
image centre and theta in radians, turning +x towards +y (rows grow downwards).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from superres.image.color import rgb_to_y, rgb_to_ycbcr, ycbcr_to_rgb
from superres.image.resize import KERNELS, contributions, imresize

Method = Callable[..., np.ndarray]
_CUBIC = KERNELS["cubic"].function


# ----------------------------------------------------------------------------- sampling


def _mirror(index: np.ndarray, length: int) -> np.ndarray:
    """Half-sample symmetric borders (..., 1, 0 | 0, 1, ...), as MATLAB imresize."""
    index = np.mod(index, 2 * length)
    return np.where(index < length, index, 2 * length - 1 - index)


def _cubic_taps(coords: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """The 4 indices and Keys (a = -0.5) weights that sample a line at each coordinate."""
    index = np.floor(coords).astype(np.int64)[..., None] + np.arange(-1, 3)
    weights = _CUBIC(coords[..., None] - index)
    return _mirror(index, length), weights


def _dense(rows: int, cols: int, index: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """A rows x cols matrix from per-row tap indices and weights (mirrored taps add up)."""
    matrix = np.zeros((rows, cols))
    np.add.at(matrix, (np.arange(rows)[:, None], index), weights)
    return matrix


def _shift_matrix(length: int, shift: float) -> np.ndarray:
    """The bicubic resampling x -> x(i + shift) of a line, as a matrix."""
    return _dense(length, length, *_cubic_taps(np.arange(length) + shift, length))


def _rotate(motion: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates (rows, cols) in the reference of every pixel of a frame with this motion."""
    dy, dx, theta = motion
    centre_y, centre_x = (shape[0] - 1) / 2, (shape[1] - 1) / 2
    y, x = np.meshgrid(np.arange(shape[0]) - centre_y, np.arange(shape[1]) - centre_x,
                       indexing="ij")
    cos, sin = math.cos(theta), math.sin(theta)
    return sin * x + cos * y + centre_y + dy, cos * x - sin * y + centre_x + dx


def _warp_taps(shape: tuple[int, int], motion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices and weights (pixels x 16) of the bicubic warp by `motion` of an image."""
    rows, cols = _rotate(motion, shape)
    index_y, weight_y = _cubic_taps(rows.ravel(), shape[0])
    index_x, weight_x = _cubic_taps(cols.ravel(), shape[1])
    index = (index_y[:, :, None] * shape[1] + index_x[:, None, :]).reshape(-1, 16)
    return index, (weight_y[:, :, None] * weight_x[:, None, :]).reshape(-1, 16)


def _gather(image: np.ndarray, taps: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    index, weights = taps
    return np.sum(image.ravel()[index] * weights, axis=1).reshape(image.shape)


def _scatter(image: np.ndarray, taps: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """The transpose of `_gather`: every output pixel hands its value back to its taps."""
    index, weights = taps
    spread = np.bincount(index.ravel(), (weights * image.ravel()[:, None]).ravel(), image.size)
    return spread.reshape(image.shape)


def warp(image: np.ndarray, motion: np.ndarray) -> np.ndarray:
    """A plane seen with `motion` (bicubic, mirrored borders): warp(ref, m)(p) = ref(T_m(p))."""
    image = np.asarray(image, dtype=np.float64)
    return _gather(image, _warp_taps(image.shape, np.asarray(motion, dtype=np.float64)))


def _inverse(motion: np.ndarray) -> np.ndarray:
    """The motion that undoes `motion`: T^-1(q) = R(-theta)(q - c - t) + c."""
    dy, dx, theta = motion
    cos, sin = math.cos(theta), math.sin(theta)
    # R(-theta) applied to (dx, dy), negated
    return np.array([-(-sin * dx + cos * dy), -(cos * dx + sin * dy), -theta])


def _fourier_shift(image: np.ndarray, shifts: np.ndarray, axis: int) -> np.ndarray:
    """Sample every line along `axis` at i + shift (shift per line of the other axis), exactly.

    The image is mirrored along the axis, which makes it periodic and continuous, and the
    shift is a phase ramp: band-limited (sinc) interpolation without wrap-around seams.
    """
    lines = np.moveaxis(image, axis, -1)
    length = lines.shape[-1]
    extended = np.concatenate([lines, lines[..., ::-1]], axis=-1)
    ramp = 2 * np.pi * np.fft.rfftfreq(2 * length) * shifts.reshape(-1, 1, 1)
    shifted = np.fft.irfft(np.fft.rfft(extended, axis=-1) * np.exp(1j * ramp), 2 * length)
    return np.moveaxis(shifted[..., :length], -1, axis)


def _fourier_warp(image: np.ndarray, motion: np.ndarray) -> np.ndarray:
    """`warp` with sinc interpolation: a shift, then a rotation by three shears.

    R = Sx(-tan θ/2) Sy(sin θ) Sx(-tan θ/2) (Unser, Thévenaz & Yaroslavsky, IEEE TIP 1995);
    each shear is a 1-D Fourier shift per line. Used to simulate bursts, so the data are not
    made with the bicubic model the solvers invert. `image` is H x W x C.
    """
    dy, dx, theta = motion
    height, width = image.shape[:2]
    out = _fourier_shift(image, np.full(width, dy), axis=0)
    out = _fourier_shift(out, np.full(height, dx), axis=1)
    if theta != 0:
        rows, cols = np.arange(height) - (height - 1) / 2, np.arange(width) - (width - 1) / 2
        shear, tilt = -math.tan(theta / 2), math.sin(theta)
        out = _fourier_shift(out, shear * rows, axis=1)
        out = _fourier_shift(out, tilt * cols, axis=0)
        out = _fourier_shift(out, shear * rows, axis=1)
    return out


# ----------------------------------------------------------------------------- imaging model


def _decimation(hr_length: int, scale: int, psf_sigma: float) -> np.ndarray:
    """D B along one axis: Gaussian PSF (sigma in HR pixels), then MATLAB bicubic 1/scale."""
    down = _dense(hr_length // scale, hr_length,
                  *contributions(hr_length, hr_length // scale, 1 / scale, "cubic"))
    if psf_sigma <= 0:
        return down
    radius = math.ceil(3 * psf_sigma)
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / psf_sigma) ** 2)
    index = _mirror(np.arange(hr_length)[:, None] + np.arange(-radius, radius + 1), hr_length)
    weights = np.broadcast_to(taps / taps.sum(), index.shape)
    return down @ _dense(hr_length, hr_length, index, weights)


def _upsampling(lr_length: int, scale: int) -> np.ndarray:
    """MATLAB bicubic upscaling by `scale` along one axis, as a matrix."""
    return _dense(lr_length * scale, lr_length,
                  *contributions(lr_length, lr_length * scale, scale, "cubic"))


def _hr_motion(motion: np.ndarray, scale: int) -> np.ndarray:
    """Motion in HR pixels: shifts times the scale; the rotation (about the centre) is kept."""
    return motion * np.array([scale, scale, 1.0])


class _Cameras:
    """A_k = D B W_k of every frame of a burst, applied to an HR plane at once, and Σ A_kᵀ.

    Translations are separable, A_k x = L_k x R_kᵀ with small dense matrices, and all frames
    go through two large matrix products; rotations go through a 16-tap bicubic gather first.
    """

    def __init__(self, lr_shape: tuple[int, int], scale: int, motion: np.ndarray,
                 psf_sigma: float) -> None:
        height, width = self.hr_shape = (lr_shape[0] * scale, lr_shape[1] * scale)
        hr_motion = _hr_motion(motion, scale)
        down_y, down_x = _decimation(height, scale, psf_sigma), _decimation(width, scale, psf_sigma)
        left = np.stack([down_y @ _shift_matrix(height, m[0]) for m in hr_motion])
        right = np.stack([down_x @ _shift_matrix(width, m[1]) for m in hr_motion])
        # squared norms of the rows of A_k: exact for translations; a rotation changes them
        # only through the local interpolation phase (a relaxation factor, for POCS)
        self.row_norms = np.sum(left**2, axis=2)[:, :, None] * np.sum(right**2, axis=2)[:, None]
        if np.all(hr_motion[:, 2] == 0):
            self.left, self.right, self.taps = left, right, None
        else:
            self.left, self.right = down_y[None], down_x[None]
            self.taps = [_warp_taps(self.hr_shape, m) for m in hr_motion]

    def forward(self, hr: np.ndarray) -> np.ndarray:
        """N x h x w: every frame simulated from the HR plane."""
        if self.taps is None:
            count, lr_height, _ = self.left.shape
            rows = (self.left.reshape(-1, self.hr_shape[0]) @ hr).reshape(count, lr_height, -1)
            return rows @ self.right.transpose(0, 2, 1)
        warped = np.stack([_gather(hr, taps) for taps in self.taps])
        return self.left @ warped @ self.right.transpose(0, 2, 1)

    def adjoint(self, lr: np.ndarray) -> np.ndarray:
        """Σ_k A_kᵀ lr_k: N x h x w frames spread back onto one HR plane."""
        columns = lr @ self.right
        if self.taps is None:
            return self.left.reshape(-1, self.hr_shape[0]).T @ columns.reshape(-1, columns.shape[2])
        spread = self.left.transpose(0, 2, 1) @ columns
        return sum(_scatter(plane, taps) for plane, taps in zip(spread, self.taps, strict=True))


@dataclass(frozen=True, eq=False)
class _Problem:
    """One plane of a registered burst: frames in [0, 1], their cameras and the scale."""

    frames: np.ndarray
    cameras: _Cameras
    motion: np.ndarray
    scale: int
    psf_sigma: float

    def bicubic(self) -> np.ndarray:
        """Single-frame bicubic upscaling of the reference: the usual starting point."""
        return imresize(self.frames[0], self.scale)


# ----------------------------------------------------------------------------- synthetic bursts


@dataclass(frozen=True, eq=False)
class Burst:
    """Simulated LR frames (N x h x w (x C), dtype of the HR image) and their true motion."""

    frames: np.ndarray
    motion: np.ndarray
    scale: int


def synthetic_burst(
    hr: np.ndarray,
    scale: int,
    frames: int = 8,
    rng: np.random.Generator | None = None,
    *,
    max_shift: float = 2.0,
    max_rotation_deg: float = 0.0,
    psf_sigma: float = 0.0,
    noise_sigma: float = 0.0,
) -> Burst:
    """N LR frames of an HR image seen with random motion, blur, decimation and noise.

    Frame 0 is the reference (no motion): without PSF and noise it is exactly the standard
    BI LR image. The others move by uniform random shifts up to `max_shift` LR pixels and
    rotations up to `max_rotation_deg`, warped with sinc interpolation. `noise_sigma` is in
    the image's units (grey levels for uint8); integer images give quantised frames.
    """
    rng = rng or np.random.default_rng()
    if scale < 1 or frames < 1:
        raise ValueError(f"need scale >= 1 and frames >= 1, got {scale} and {frames}")
    hr = hr[: hr.shape[0] - hr.shape[0] % scale, : hr.shape[1] - hr.shape[1] % scale]
    image = np.atleast_3d(hr).astype(np.float64)
    motion = np.zeros((frames, 3))
    motion[1:, :2] = rng.uniform(-max_shift, max_shift, (frames - 1, 2))
    motion[1:, 2] = np.deg2rad(rng.uniform(-max_rotation_deg, max_rotation_deg, frames - 1))
    down_y = _decimation(image.shape[0], scale, psf_sigma)
    down_x = _decimation(image.shape[1], scale, psf_sigma)
    lr = []
    for m in motion:
        seen = _fourier_warp(image, np.array([scale * m[0], scale * m[1], m[2]])) if m.any() \
            else image
        rows = np.tensordot(down_y, seen, axes=(1, 0))  # h x W x C
        frame = np.tensordot(rows, down_x, axes=(1, 1)).transpose(0, 2, 1)
        if noise_sigma > 0:
            frame = frame + noise_sigma * rng.standard_normal(frame.shape)
        lr.append(frame.reshape(frame.shape[:2] + hr.shape[2:]))
    out = np.stack(lr)
    if np.issubdtype(hr.dtype, np.integer):
        info = np.iinfo(hr.dtype)
        out = np.clip(np.round(out), info.min, info.max).astype(hr.dtype)
    return Burst(out, motion, scale)


# ----------------------------------------------------------------------------- registration


def _hann(length: int) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(2 * np.pi * (np.arange(length) + 0.5) / length)


def _gaussian_smooth(image: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur with mirrored borders (anti-aliasing before registration)."""
    radius = math.ceil(3 * sigma)
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    out = image
    for axis, length in enumerate(image.shape):
        index = _mirror(np.arange(length)[:, None] + np.arange(-radius, radius + 1), length)
        out = np.tensordot(np.take(out, index, axis=axis), taps, axes=([axis + 1], [0]))
    return out


def phase_correlation(
    reference: np.ndarray, moving: np.ndarray, upsample: int = 100
) -> tuple[np.ndarray, float]:
    """Translation (dy, dx) with moving(p) ≈ reference(p + (dy, dx)), and the peak height.

    Phase correlation of Hann-windowed planes (Kuglin & Hines 1975), its peak refined to
    1/upsample px by a matrix-multiply DFT around it (Guizar-Sicairos, Thurman & Fienup,
    Optics Letters 2008); `upsample=1` keeps the whole-pixel peak.
    """
    window = np.outer(_hann(reference.shape[0]), _hann(reference.shape[1]))
    spectrum_ref = np.fft.fft2((reference - reference.mean()) * window)
    spectrum_mov = np.fft.fft2((moving - moving.mean()) * window)
    cross = spectrum_ref * np.conj(spectrum_mov)
    cross /= np.maximum(np.abs(cross), 1e-12)
    surface = np.fft.ifft2(cross).real
    peak = np.array(np.unravel_index(np.argmax(surface), surface.shape), dtype=np.float64)
    peak = np.where(peak > np.array(surface.shape) / 2, peak - surface.shape, peak)
    if upsample <= 1:
        return peak, float(surface.max())
    span = math.ceil(1.5 * upsample)
    offsets = (np.arange(span) - span // 2) / upsample
    freq_y = 2j * np.pi * np.fft.fftfreq(surface.shape[0])
    freq_x = 2j * np.pi * np.fft.fftfreq(surface.shape[1])
    fine = (np.exp(np.outer(peak[0] + offsets, freq_y)) @ cross
            @ np.exp(np.outer(freq_x, peak[1] + offsets))).real / surface.size
    best = np.unravel_index(np.argmax(fine), fine.shape)
    return peak + offsets[list(best)], float(fine[best])


def _refine(
    template: np.ndarray, image: np.ndarray, motion: np.ndarray, rotation: bool,
    iterations: int = 50,
) -> np.ndarray:
    """Gauss-Newton on the brightness-constancy error image(T(p)) - template(p) (Keren, Peleg
    & Brada, CVPR 1988).

    Gradients are the mean of the template's and the warped image's (ESM, Benhimane & Malis
    2004), which converges in a few steps; border pixels and samples falling outside the
    image are left out.
    """
    shape = template.shape
    centre_y, centre_x = (shape[0] - 1) / 2, (shape[1] - 1) / 2
    y, x = np.meshgrid(np.arange(shape[0]) - centre_y, np.arange(shape[1]) - centre_x,
                       indexing="ij")
    template_gy, template_gx = np.gradient(template)
    interior = np.zeros(shape, dtype=bool)
    interior[2:-2, 2:-2] = True
    motion = motion.astype(np.float64).copy()
    for _ in range(iterations):
        rows, cols = _rotate(motion, shape)
        valid = interior & (rows >= 1) & (rows <= shape[0] - 2)
        valid &= (cols >= 1) & (cols <= shape[1] - 2)
        warped = warp(image, motion)
        gy, gx = np.gradient(warped)
        ay, ax = 0.5 * (gy + template_gy), 0.5 * (gx + template_gx)
        cos, sin = math.cos(motion[2]), math.sin(motion[2])
        grad_x, grad_y = cos * ax - sin * ay, sin * ax + cos * ay  # image's gradient at T(p)
        columns = [grad_y, grad_x]
        if rotation:
            columns.append(grad_x * (-sin * x - cos * y) + grad_y * (cos * x - sin * y))
        jacobian = np.stack([c[valid] for c in columns], axis=1)
        step = np.linalg.lstsq(jacobian, template[valid] - warped[valid], rcond=None)[0]
        motion[:2] += step[:2]
        if rotation:
            motion[2] += step[2]
        if np.max(np.abs(step[:2])) < 1e-5 and (not rotation or abs(step[2]) < 1e-7):
            break
    return motion


def register(
    reference: np.ndarray,
    moving: np.ndarray,
    *,
    rotation: bool = False,
    max_rotation_deg: float = 3.0,
    smooth: float = 1.0,
) -> np.ndarray:
    """Motion (dy, dx, theta) of `moving` against `reference` (2-D planes), to ~0.01 px.

    Coarse: phase correlation, after trying rotations on a 0.25° grid up to
    `max_rotation_deg` when `rotation` is set. Fine: Gauss-Newton on both planes blurred by
    `smooth` px, which keeps the aliased high frequencies (that differ between frames of a
    burst, and bias registration) out of the estimate.
    """
    reference = np.asarray(reference, dtype=np.float64)
    moving = np.asarray(moving, dtype=np.float64)
    if reference.shape != moving.shape or reference.ndim != 2:
        raise ValueError(f"expected two same-shape planes, got {reference.shape}, {moving.shape}")
    angles = [0.0]
    if rotation:
        steps = math.ceil(max_rotation_deg / 0.25)
        angles = list(np.deg2rad(np.linspace(-max_rotation_deg, max_rotation_deg, 2 * steps + 1)))
    # derotated(p) = moving(R(-theta) p) = reference(p + shift) about the centre, so
    # moving(q) = reference(R(theta) q + shift)
    derotated = [warp(moving, np.array([0.0, 0.0, -theta])) if theta else moving
                 for theta in angles]
    heights = [phase_correlation(reference, plane, upsample=1)[1] for plane in derotated]
    best = int(np.argmax(heights))
    shift, _ = phase_correlation(reference, derotated[best])
    motion = np.array([shift[0], shift[1], angles[best]])
    if smooth > 0:
        reference, moving = _gaussian_smooth(reference, smooth), _gaussian_smooth(moving, smooth)
    # moving(p) = reference(T(p)): warp the reference onto the moving frame
    return _refine(moving, reference, motion, rotation)


def _luma_planes(frames: np.ndarray) -> np.ndarray:
    """N x h x w planes to register: the frames themselves, or the BT.601 Y of colour frames."""
    frames = np.asarray(frames, dtype=np.float64)
    if frames.ndim == 4:
        return rgb_to_y(frames[..., :3])[..., 0] if frames.shape[3] >= 3 else frames[..., 0]
    return frames


def register_burst(
    frames: np.ndarray, *, rotation: bool = False, max_rotation_deg: float = 3.0
) -> np.ndarray:
    """Motion (N x 3: dy, dx, theta) of every frame against the first; row 0 is zero.

    Colour frames (N x h x w x 3) are registered on their BT.601 luma.
    """
    planes = _luma_planes(frames)
    motion = np.zeros((len(planes), 3))
    for k in range(1, len(planes)):
        motion[k] = register(planes[0], planes[k], rotation=rotation,
                             max_rotation_deg=max_rotation_deg)
    return motion


# ----------------------------------------------------------------------------- solvers


def _camera_response(down: np.ndarray, scale: int, freq: np.ndarray) -> np.ndarray:
    """Frequency response of one axis of D B about the sample centre, from an interior row."""
    row = down.shape[0] // 2
    offsets = np.arange(down.shape[1]) - (scale * row + (scale - 1) / 2)
    return np.exp(1j * np.outer(freq, offsets)) @ down[row]


def _laplacian(freq_y: np.ndarray, freq_x: np.ndarray) -> np.ndarray:
    """Response of the 5-point Laplacian (a smoothness penalty), broadcast over the inputs."""
    return (2 - 2 * np.cos(freq_y)) + (2 - 2 * np.cos(freq_x))


def _shift_and_add(problem: _Problem, wiener: float, spread: float) -> np.ndarray:
    count, scale = len(problem.frames), problem.scale
    shape, lr_shape = problem.cameras.hr_shape, problem.frames.shape[1:]
    sigma = spread * scale / math.sqrt(count)  # a fraction of the mean sample spacing, HR px
    radius = max(1, math.ceil(2 * sigma))
    positions = [_rotate(m, lr_shape) for m in problem.motion]
    rows = np.concatenate([scale * r.ravel() + (scale - 1) / 2 for r, _ in positions])
    cols = np.concatenate([scale * c.ravel() + (scale - 1) / 2 for _, c in positions])
    values = problem.frames.reshape(-1)
    near_y, near_x = np.round(rows).astype(np.int64), np.round(cols).astype(np.int64)
    sums, weights = np.zeros(shape[0] * shape[1]), np.zeros(shape[0] * shape[1])
    for oy in range(-radius, radius + 1):
        for ox in range(-radius, radius + 1):
            ty, tx = near_y + oy, near_x + ox
            inside = (ty >= 0) & (ty < shape[0]) & (tx >= 0) & (tx < shape[1])
            w = np.exp(-((ty - rows) ** 2 + (tx - cols) ** 2) / (2 * sigma**2))[inside]
            flat = ty[inside] * shape[1] + tx[inside]
            sums += np.bincount(flat, w * values[inside], sums.size)
            weights += np.bincount(flat, w, sums.size)
    fill = 1e-3 * weights.mean()  # holes, if any, take the bicubic image
    fused = ((sums + fill * problem.bicubic().ravel()) / (weights + fill)).reshape(shape)
    # deconvolution on the mirrored extension, which is periodic and continuous
    extended = np.concatenate([fused, fused[::-1]], axis=0)
    extended = np.concatenate([extended, extended[:, ::-1]], axis=1)
    freq_y, freq_x = (2 * np.pi * np.fft.fftfreq(2 * length) for length in shape)
    blur_y, blur_x = (
        _camera_response(_decimation(length, scale, problem.psf_sigma), scale, freq).real
        * np.exp(-0.5 * (sigma * freq) ** 2)  # the Gaussian applicability blurs too
        for length, freq in ((shape[0], freq_y), (shape[1], freq_x))
    )
    response = np.outer(blur_y, blur_x)
    restore = response / (response**2 + wiener * _laplacian(freq_y[:, None], freq_x) ** 2)
    return np.fft.ifft2(np.fft.fft2(extended) * restore).real[: shape[0], : shape[1]]


def _ibp(problem: _Problem, iterations: int) -> np.ndarray:
    scale, (count, height, width) = problem.scale, problem.frames.shape
    hr_height, hr_width = problem.cameras.hr_shape
    up_y, up_x = _upsampling(height, scale), _upsampling(width, scale)
    inverse = [_inverse(m) for m in _hr_motion(problem.motion, scale)]
    if np.all(problem.motion[:, 2] == 0):  # W_k⁻¹ bicubic_up as two matrices per frame
        back_y = np.concatenate([_shift_matrix(hr_height, m[0]) @ up_y for m in inverse], axis=1)
        back_x = np.stack([_shift_matrix(hr_width, m[1]) @ up_x for m in inverse])

        def back_project(residual: np.ndarray) -> np.ndarray:
            return back_y @ (residual @ back_x.transpose(0, 2, 1)).reshape(-1, hr_width)
    else:
        taps = [_warp_taps((hr_height, hr_width), m) for m in inverse]

        def back_project(residual: np.ndarray) -> np.ndarray:
            upscaled = up_y @ residual @ up_x.T
            return sum(_gather(plane, t) for plane, t in zip(upscaled, taps, strict=True))

    estimate = problem.bicubic()
    for _ in range(iterations):
        residual = problem.frames - problem.cameras.forward(estimate)
        estimate = estimate + back_project(residual) / count
    return estimate


def _btv_gradient(image: np.ndarray, window: int, alpha: float) -> np.ndarray:
    """Subgradient of bilateral TV, sum over shifts of alpha^(|l|+|m|) ||x - S_x^l S_y^m x||_1.

    Differences are taken where both pixels exist, so borders do not wrap.
    """
    gradient = np.zeros_like(image)
    height, width = image.shape
    for dy in range(window + 1):
        for dx in range(-window, window + 1):
            if dy == 0 and dx <= 0:
                continue  # each pair of pixels once
            a = (slice(dy, height), slice(max(dx, 0), width + min(dx, 0)))
            b = (slice(0, height - dy), slice(max(-dx, 0), width + min(-dx, 0)))
            sign = alpha ** (abs(dx) + dy) * np.sign(image[a] - image[b])
            gradient[a] += sign
            gradient[b] -= sign
    return gradient


def _map_btv(
    problem: _Problem, iterations: int, lam: float, alpha: float, window: int, step: float
) -> np.ndarray:
    count, scale, cameras = len(problem.frames), problem.scale, problem.cameras
    estimate = problem.bicubic()
    decay = 0.05 ** (1 / max(iterations - 1, 1))
    beta = step * scale**2 / count
    for _ in range(iterations):
        gradient = lam * _btv_gradient(estimate, window, alpha)
        gradient += cameras.adjoint(np.sign(cameras.forward(estimate) - problem.frames))
        estimate = estimate - beta * gradient
        beta *= decay
    return estimate


def _pocs(problem: _Problem, iterations: int, delta: float) -> np.ndarray:
    estimate = problem.bicubic()
    norms = problem.cameras.row_norms
    for _ in range(iterations):
        residual = problem.frames - problem.cameras.forward(estimate)
        excess = residual - np.clip(residual, -delta, delta)
        direction = problem.cameras.adjoint(excess / norms)
        distance = np.sum(excess**2 / norms)
        norm = np.sum(direction**2)
        if norm == 0:
            break  # every sample is within delta: x is in the intersection
        estimate = np.clip(estimate + distance / norm * direction, 0, 1)
    return estimate


def _frequency_domain(problem: _Problem, regularization: float, margin: int) -> np.ndarray:
    if np.any(problem.motion[:, 2] != 0):
        raise ValueError("the frequency-domain method models pure translations; "
                         "the motion has rotations (use another method)")
    scale = problem.scale
    frames = np.pad(problem.frames, ((0, 0), (margin, margin), (margin, margin)), mode="symmetric")
    count, height, width = frames.shape
    spectra = np.fft.fft2(frames).transpose(1, 2, 0)  # h x w x N
    axes = []
    for length, shifts in ((height, problem.motion[:, 0]), (width, problem.motion[:, 1])):
        hr_length = length * scale
        freq = 2 * np.pi * np.fft.fftfreq(hr_length)  # signed, radians per HR pixel
        response = _camera_response(_decimation(hr_length, scale, problem.psf_sigma), scale, freq)
        phase = np.exp(1j * np.outer(scale * shifts + (scale - 1) / 2, freq))  # N x H
        bins = np.arange(length)[:, None] + length * np.arange(scale)  # LR bin -> its aliases
        axes.append(((response * phase)[:, bins] / scale, freq[bins]))  # N x lr x s
    (model_y, freq_y), (model_x, freq_x) = axes
    system = np.einsum("kua,kvb->uvkab", model_y, model_x).reshape(height, width, count, -1)
    penalty = _laplacian(freq_y[:, None, :, None], freq_x[None, :, None, :]) ** 2
    normal = np.einsum("uvka,uvkb->uvab", system.conj(), system)
    normal += (regularization * penalty.reshape(height, width, -1) + 1e-12)[..., None] * np.eye(
        scale * scale
    )
    rhs = np.einsum("uvka,uvk->uva", system.conj(), spectra)
    solution = np.linalg.solve(normal, rhs[..., None])[..., 0].reshape(height, width, scale, scale)
    hr_spectrum = np.zeros((height * scale, width * scale), dtype=np.complex128)
    rows = np.arange(height)[:, None] + height * np.arange(scale)
    cols = np.arange(width)[:, None] + width * np.arange(scale)
    hr_spectrum[rows[:, None, :, None], cols[None, :, None, :]] = solution
    crop = margin * scale
    return np.fft.ifft2(hr_spectrum).real[crop : crop + height * scale - 2 * crop,
                                          crop : crop + width * scale - 2 * crop]


def _peak(frames: np.ndarray) -> float:
    """The value of full white: the integer maximum, or 1 for float frames (checked)."""
    if np.issubdtype(frames.dtype, np.integer):
        return float(np.iinfo(frames.dtype).max)
    if frames.size and np.max(np.abs(frames)) > 2:
        raise ValueError(f"float frames must be in [0, 1], got values up to {np.max(frames):g}; "
                         "pass integer frames or divide by their white level")
    return 1.0


def _run(
    solver: Callable[..., np.ndarray], frames: np.ndarray, motion: np.ndarray, scale: int,
    psf_sigma: float, **params: float,
) -> np.ndarray:
    """Run a plane solver on every channel of frames of any dtype, in the frames' units."""
    frames = np.asarray(frames)
    if frames.ndim not in (3, 4):
        raise ValueError(f"expected N x h x w (x C) frames, got shape {frames.shape}")
    peak = _peak(frames)
    planes = frames.astype(np.float64) / peak
    motion = np.asarray(motion, dtype=np.float64)
    if motion.shape != (len(frames), 3):
        raise ValueError(f"expected motion of shape ({len(frames)}, 3), got {motion.shape}")
    cameras = _Cameras(frames.shape[1:3], scale, motion, psf_sigma)

    def solve(stack: np.ndarray) -> np.ndarray:
        return solver(_Problem(stack, cameras, motion, scale, psf_sigma), **params) * peak

    if planes.ndim == 3:
        return solve(planes)
    return np.stack([solve(planes[..., c]) for c in range(planes.shape[3])], axis=-1)


# Every method takes frames N x h x w (x C) (integer, or float in [0, 1]), their motion
# (N x 3, see the module docstring), the integer scale and the Gaussian PSF sigma in HR px
# (0: the bicubic camera alone), and returns the float64 HR image of frame 0's view in the
# frames' units. Defaults were tuned on BSD200 crops (training images), x2, 1-16 frames.


def shift_and_add(
    frames: np.ndarray, motion: np.ndarray, scale: int, *, psf_sigma: float = 0.0,
    wiener: float = 0.005, spread: float = 0.5,
) -> np.ndarray:
    """Non-uniform interpolation: fuse all samples on the HR grid, then deconvolve.

    The interpolation-restoration approach (Ur & Gross, CVGIP 1992; shift-and-add of Elad &
    Hel-Or, IEEE TIP 2001): every LR sample is splatted at its sub-pixel HR position with a
    Gaussian applicability `spread` x the mean sample spacing wide and normalised (normalized
    convolution, Knutsson & Westin, CVPR 1993), which estimates the blurred HR image; a
    constrained least-squares (Wiener with a Laplacian prior, weight `wiener`) filter then
    removes the camera blur and the applicability's.
    """
    return _run(_shift_and_add, frames, motion, scale, psf_sigma, wiener=wiener, spread=spread)


def iterative_back_projection(
    frames: np.ndarray, motion: np.ndarray, scale: int, *, psf_sigma: float = 0.0,
    iterations: int = 30,
) -> np.ndarray:
    """Iterative back-projection (Irani & Peleg, CVGIP: Graphical Models and Image Processing
    1991): x += mean_k W_k⁻¹ bicubic_up(y_k - A_k x).

    Each frame's simulation error is upscaled and moved back along its inverse motion;
    bicubic upscaling is the back-projection kernel p. Starts from bicubic of frame 0.
    """
    return _run(_ibp, frames, motion, scale, psf_sigma, iterations=iterations)


def map_btv(
    frames: np.ndarray, motion: np.ndarray, scale: int, *, psf_sigma: float = 0.0,
    iterations: int = 60, lam: float = 0.02, alpha: float = 0.7, window: int = 2,
    step: float = 0.05,
) -> np.ndarray:
    """MAP with a robust L1 data term and a bilateral-TV prior (Farsiu, Robinson, Elad &
    Milanfar, "Fast and Robust Multiframe Super Resolution", IEEE TIP 2004):

        x -= β [Σ_k A_kᵀ sign(A_k x - y_k) + λ Σ_{l,m} α^(|l|+|m|) (I - S⁻ˡ⁻ᵐ) sign(x - Sˡᵐ x)]

    with shifts up to `window` px. The L1 data term makes the estimate a pixelwise median of
    the frames, robust to outliers and registration errors. β decays geometrically from
    `step` to `step`/20 (a diminishing-step subgradient method), divided by frames / scale².
    """
    return _run(_map_btv, frames, motion, scale, psf_sigma, iterations=iterations, lam=lam,
                alpha=alpha, window=window, step=step)


def pocs(
    frames: np.ndarray, motion: np.ndarray, scale: int, *, psf_sigma: float = 0.0,
    iterations: int = 20, delta: float = 1 / 255,
) -> np.ndarray:
    """Projection onto convex sets (Stark & Oskoui, JOSA A 1989; Patti, Sezan & Tekalp,
    IEEE TIP 1997): find x in [0, 1] with |y_k(p) - (A_k x)(p)| <= delta for every sample.

    `delta` is in units of the full range (1/255: one grey level). All sample sets are
    projected onto at once and the projections averaged, with the extrapolated step of
    Combettes (IEEE TIP 1997), then the amplitude set [0, 1]; starts from bicubic.
    """
    return _run(_pocs, frames, motion, scale, psf_sigma, iterations=iterations, delta=delta)


def frequency_domain(
    frames: np.ndarray, motion: np.ndarray, scale: int, *, psf_sigma: float = 0.0,
    regularization: float = 1e-3, margin: int = 8,
) -> np.ndarray:
    """Least squares on the aliasing relations of the frames' DFTs (Tsai & Huang, "Multiframe
    image restoration and registration", Advances in Computer Vision and Image Processing
    1984), with a Tikhonov smoothness term as Kim & Su (IEEE TIP 1993). Translations only.

    DFT bin (u, v) of frame k mixes the scale² HR bins that alias onto it, each with the
    phase of the frame's shift and the camera's response: one small least-squares system per
    LR bin, solved for all bins at once, penalised by `regularization` x |Laplacian|². The
    DFT assumes periodic frames: they are mirrored by `margin` px, which is cut off again.
    """
    return _run(_frequency_domain, frames, motion, scale, psf_sigma,
                regularization=regularization, margin=margin)


METHODS: dict[str, Method] = {
    "shift-and-add": shift_and_add,
    "ibp": iterative_back_projection,
    "map-btv": map_btv,
    "pocs": pocs,
    "frequency": frequency_domain,
}


def upscale_burst(
    frames: np.ndarray,
    scale: int,
    method: str = "map-btv",
    *,
    motion: np.ndarray | None = None,
    rotation: bool = False,
    max_rotation_deg: float = 3.0,
    psf_sigma: float = 0.0,
    **options: float,
) -> np.ndarray:
    """The HR image of the first frame's view from a burst: register, then reconstruct.

    `frames` is N x h x w or N x h x w x C (uint8/uint16, or float in [0, 1]); the result is
    float64 H x W (x C) in the frames' units (0..255 for uint8: round with `to_uint`). Colour
    frames are reconstructed on Y, chroma is bicubic from the first frame (as SRCNN does).
    `motion` skips registration; `options` go to the method (see METHODS).
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    frames = np.asarray(frames)
    if frames.ndim not in (3, 4) or (frames.ndim == 4 and frames.shape[3] not in (1, 3)):
        raise ValueError(f"expected N x h x w or N x h x w x 1|3 frames, got {frames.shape}")
    if int(scale) != scale or scale < 2:
        raise ValueError(f"scale must be an integer >= 2, got {scale}")
    if motion is None:
        motion = register_burst(frames, rotation=rotation, max_rotation_deg=max_rotation_deg)
    solver = METHODS[method]
    if frames.ndim == 3 or frames.shape[3] == 1:
        out = solver(frames.reshape(frames.shape[:3]), motion, scale, psf_sigma=psf_sigma,
                     **options)
        return out.reshape(out.shape + frames.shape[3:])
    ycbcr = rgb_to_ycbcr(frames.astype(np.float64) / _peak(frames))
    luma = solver(ycbcr[..., 0], motion, scale, psf_sigma=psf_sigma, **options)
    chroma = imresize(ycbcr[0, ..., 1:], scale)
    return ycbcr_to_rgb(np.concatenate([luma[..., None], chroma], axis=-1)) * _peak(frames)
