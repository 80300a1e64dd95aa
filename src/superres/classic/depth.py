"""Classical colour-guided depth upsampling: bicubic, joint bilateral upsampling (Kopf et al.,
"Joint Bilateral Upsampling", SIGGRAPH 2007) and the guided filter (He, Sun and Tang, "Guided
Image Filtering", ECCV 2010 / TPAMI 2013) applied to the bicubic-upsampled depth.

All work on float arrays in [0, 1]: depth H x W (LR h x w for the upsamplers), guide
H x W x 3 or H x W. Vectorised NumPy: a 1344 x 1088 map takes about a second.
"""

from __future__ import annotations

import numpy as np

from superres.image.resize import imresize


def _checked(lr: np.ndarray, guide: np.ndarray, scale: int) -> tuple[int, int]:
    """The HR size, after checking that the guide is `scale` times the LR depth."""
    if lr.ndim != 2:
        raise ValueError(f"the depth map must be H x W, not {lr.shape}")
    size = (lr.shape[0] * scale, lr.shape[1] * scale)
    if guide.shape[:2] != size:
        raise ValueError(f"the guide is {guide.shape[1]}x{guide.shape[0]}, but x{scale} of a "
                         f"{lr.shape[1]}x{lr.shape[0]} depth map needs {size[1]}x{size[0]}")
    return size


def bicubic_depth(lr: np.ndarray, scale: int) -> np.ndarray:
    """The LR depth upsampled by MATLAB's bicubic imresize: the baseline every method beats."""
    return np.asarray(imresize(np.asarray(lr, dtype=np.float64), scale), dtype=np.float64)


def joint_bilateral_upsample(lr: np.ndarray, guide: np.ndarray, scale: int,
                             sigma_spatial: float = 1.0, sigma_range: float = 0.1,
                             radius: int = 2) -> np.ndarray:
    """Kopf et al.'s JBU: each HR pixel p averages the LR depths S(q) of the 2r x 2r LR pixels
    q nearest to p's position in the LR grid, weighted by a spatial Gaussian of that distance
    (`sigma_spatial`, LR pixels) and a range Gaussian of the guide's difference between p and
    q's centre at HR (`sigma_range`, guide units)."""
    height, width = _checked(lr, guide, scale)
    guide = guide.astype(np.float64).reshape(height, width, -1)
    # p's position in LR pixel coordinates (pixel centres at integers), as imresize maps it
    ys = (np.arange(height) + 0.5) / scale - 0.5
    xs = (np.arange(width) + 0.5) / scale - 0.5
    base_y, base_x = np.floor(ys).astype(int), np.floor(xs).astype(int)
    total = np.zeros((height, width))
    weights = np.zeros((height, width))
    for dy in range(-radius + 1, radius + 1):
        qy = np.clip(base_y + dy, 0, lr.shape[0] - 1)
        # the HR pixel at q's centre, whose guide colour q is compared by
        hy = np.clip(np.round((qy + 0.5) * scale - 0.5).astype(int), 0, height - 1)
        for dx in range(-radius + 1, radius + 1):
            qx = np.clip(base_x + dx, 0, lr.shape[1] - 1)
            hx = np.clip(np.round((qx + 0.5) * scale - 0.5).astype(int), 0, width - 1)
            distance2 = (ys - qy)[:, None] ** 2 + (xs - qx)[None, :] ** 2
            colour2 = ((guide - guide[hy][:, hx]) ** 2).sum(axis=2)
            weight = np.exp(-distance2 / (2 * sigma_spatial**2)
                            - colour2 / (2 * sigma_range**2))
            total += weight * lr[qy][:, qx]
            weights += weight
    return total / weights


def box_mean(image: np.ndarray, radius: int) -> np.ndarray:
    """Mean over the (2r + 1)^2 window around each pixel, the window cut at the borders
    (summed-area table, O(1) per pixel whatever the radius); over the first two axes, any
    trailing axes (channels, 3 x 3 products) averaged alike."""
    def window_sum(x: np.ndarray, axis: int) -> np.ndarray:
        n = x.shape[axis]
        padded = np.concatenate([np.zeros_like(np.take(x, [0], axis=axis)),
                                 np.cumsum(x, axis=axis)], axis=axis)
        upper = np.minimum(np.arange(n) + radius + 1, n)
        lower = np.maximum(np.arange(n) - radius, 0)
        return np.take(padded, upper, axis=axis) - np.take(padded, lower, axis=axis)

    ones = np.ones(image.shape[:2])
    count = window_sum(window_sum(ones, 0), 1)
    sums = window_sum(window_sum(image, 0), 1)
    return sums / count.reshape(count.shape + (1,) * (image.ndim - 2))


def guided_filter(source: np.ndarray, guide: np.ndarray, radius: int,
                  eps: float) -> np.ndarray:
    """He et al.'s guided filter of `source` (H x W) by `guide` (H x W gray, or H x W x 3
    colour, the paper's eq. 19-21): in each window the output is an affine function of the
    guide fitted to the source by ridge regression (`eps`), averaged over the windows."""
    source = source.astype(np.float64)
    guide = guide.astype(np.float64)
    if guide.shape[:2] != source.shape:
        raise ValueError(f"guide {guide.shape[:2]} and source {source.shape} differ in size")
    mean_p = box_mean(source, radius)
    if guide.ndim == 2:
        mean_i = box_mean(guide, radius)
        cov_ip = box_mean(guide * source, radius) - mean_i * mean_p
        var_i = box_mean(guide * guide, radius) - mean_i**2
        a = cov_ip / (var_i + eps)
        b = mean_p - a * mean_i
        return box_mean(a, radius) * guide + box_mean(b, radius)
    mean_i = box_mean(guide, radius)  # H x W x 3
    cov_ip = box_mean(guide * source[..., None], radius) - mean_i * mean_p[..., None]
    products = box_mean(guide[..., :, None] * guide[..., None, :], radius)
    sigma = products - mean_i[..., :, None] * mean_i[..., None, :]  # H x W x 3 x 3
    a = np.linalg.solve(sigma + eps * np.eye(3), cov_ip[..., None])[..., 0]
    b = mean_p - (a * mean_i).sum(axis=2)
    return (box_mean(a, radius) * guide).sum(axis=2) + box_mean(b, radius)


def guided_filter_upsample(lr: np.ndarray, guide: np.ndarray, scale: int,
                           radius: int | None = None, eps: float = 1e-3) -> np.ndarray:
    """The guided filter applied to the bicubic-upsampled depth, with the HR guide; the window
    radius defaults to the scale, so each window spans about two LR pixels."""
    _checked(lr, guide, scale)
    return guided_filter(bicubic_depth(lr, scale), guide, radius or scale, eps)
