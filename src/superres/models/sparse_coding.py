"""Sparse-coding SR: Yang, Wright, Huang and Ma, "Image Super-Resolution via Sparse
Representation", IEEE TIP 2010 (the "SC" baseline of the SRCNN paper). Two dictionaries are
learned jointly from HR/LR patch pairs so that an HR patch and its LR features share one
sparse code; at test time each LR patch is sparse-coded over the LR dictionary and the same
code, applied to the HR dictionary, gives its HR patch.

Every setting is the paper's, or where the paper is silent the authors' released MATLAB
code's (`ScSR.m`, `backprojection.m`, `train_coupled_dict.m`). Y channel only (chroma by
bicubic). The LR image is upscaled by bicubic; its features are the first- and second-order
derivatives along x and y (filters [-1, 0, 1] and [1, 0, -2, 0, 1] and their transposes,
as MATLAB `conv2(..., 'same')` applies them). Patches are 5 x 5 on the upscaled grid, one
every pixel (overlap 4), 2 pixels from the border; the border keeps the bicubic values.
A patch's feature vector (4 x 25) is divided by its norm when that exceeds 1 (0-255
units), coded over the LR dictionary with unit-norm atoms by the lasso with penalty 0.1;
the HR patch is D_h a rescaled to 1.2 times the norm of the mean-removed bicubic patch,
plus that patch's mean; overlaps are averaged. Then the global reconstruction constraint:
20 iterations of back-projection onto the LR image (bicubic down- and up-sampling, the
upsampled error smoothed by a 5 x 5 squared Gaussian of sigma 1).

Deviations: the lasso is solved by feature-sign search, as the authors do, but on
thousands of patches in lock-step (`superres.classic.lasso`), to the optimality conditions within a
relative 1e-4. Pixels are floats throughout, where the MATLAB code rounds the bicubic image
and the patch result to uint8. The penalty 0.1 is the paper's as we recall it (the
released demo uses 0.2). The dictionaries and how they are learned:
`superres.train.dictionary`. A dictionary is shipped for x3 only (the SRCNN comparison's
scale); SRCNN (Dong et al., TPAMI 2016) reports SC at Set5 x3 31.42 dB / 0.8821 and Set14
x3 28.31 / 0.7954 (recalled, not checked against the paper).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from superres.classic.lasso import lasso
from superres.image.resize import imresize
from superres.models.registry import ModelSpec

PAPER = ("Yang, Wright, Huang and Ma, Image Super-Resolution via Sparse Representation, "
         "IEEE TIP 2010")

PATCH = 5  # patch side on the upscaled grid
FEATURES = 4  # first- and second-order derivatives along x and y
MARGIN = 2  # pixels of border left to bicubic (the reach of the 5-tap filters)
ATOMS = 1024
PENALTY = 0.1  # the lasso penalty at test time
CONTRAST = 1.2  # HR patch norm / bicubic patch norm (the released code's `lin_scale`)
BACK_PROJECTION = 20  # iterations of the global reconstruction constraint
CHUNK = 8192  # patches per lasso call: bounds memory on any image size
PEAK = 255.0  # the units the paper's thresholds are given in


def gradient_features(image: torch.Tensor) -> torch.Tensor:
    """N x 1 x H x W -> N x 4 x H x W: d/dx, d/dy, d2/dx2, d2/dy2 as MATLAB's
    `conv2(image, f, 'same')` gives them (a true convolution, so flipped, zero-padded)."""
    if image.ndim != 4 or image.shape[1] != 1:
        raise ValueError(f"expected N x 1 x H x W, got {tuple(image.shape)}")
    first = image.new_tensor([1.0, 0.0, -1.0])  # [-1, 0, 1] flipped
    second = image.new_tensor([1.0, 0.0, -2.0, 0.0, 1.0])  # symmetric
    return torch.cat([
        F.conv2d(image, first.view(1, 1, 1, 3), padding=(0, 1)),
        F.conv2d(image, first.view(1, 1, 3, 1), padding=(1, 0)),
        F.conv2d(image, second.view(1, 1, 1, 5), padding=(0, 2)),
        F.conv2d(image, second.view(1, 1, 5, 1), padding=(2, 0)),
    ], dim=1)


def patches_at(image: torch.Tensor, tops: torch.Tensor, lefts: torch.Tensor,
               size: int = PATCH) -> torch.Tensor:
    """The size x size patches of C x H x W at (tops[i], lefts[i]) as rows of n x (C size^2),
    channel by channel, each patch row by row: the layout of the dictionaries' rows."""
    offsets = torch.arange(size, device=image.device)
    rows = (tops[:, None] + offsets)[:, :, None]
    cols = (lefts[:, None] + offsets)[:, None, :]
    return image[:, rows, cols].permute(1, 0, 2, 3).reshape(tops.numel(), -1)


def grid_starts(length: int, step: int, size: int = PATCH) -> torch.Tensor:
    """Patch origins along one axis as in the released code: every `step` pixels from MARGIN,
    and one flush with MARGIN pixels before the end; empty when no patch fits."""
    last = length - size - MARGIN
    if last < MARGIN:
        return torch.zeros(0, dtype=torch.long)
    starts = list(range(MARGIN, last + 1, step))
    if starts[-1] != last:
        starts.append(last)
    return torch.tensor(starts)


def back_projection_kernel() -> torch.Tensor:
    """The released code's smoothing of the upsampled error: a 5 x 5 Gaussian of sigma 1,
    squared and renormalised (so a Gaussian of sigma 1/sqrt(2) sampled on 5 x 5)."""
    offsets = torch.arange(-2.0, 3.0)
    gaussian = torch.exp(-(offsets[:, None] ** 2 + offsets[None, :] ** 2) / 2)
    squared = (gaussian / gaussian.sum()) ** 2
    return (squared / squared.sum()).view(1, 1, 5, 5)


def back_project(sr: torch.Tensor, lr: torch.Tensor, iterations: int = BACK_PROJECTION
                 ) -> torch.Tensor:
    """Pull `sr` (N x 1 x sH x sW) towards consistency with `lr` (N x 1 x H x W) under the
    bicubic degradation: the paper's global reconstruction constraint, solved by iterative
    back-projection as in the released code."""
    kernel = back_projection_kernel().to(sr)
    for _ in range(iterations):
        error = lr - imresize(sr, size=tuple(lr.shape[-2:]))
        sr = sr + F.conv2d(imresize(error, size=tuple(sr.shape[-2:])), kernel, padding=2)
    return sr


class SparseCodingSR(nn.Module):
    """Sparse-coding SR for one scale over coupled dictionaries `high` (HR patches, 25 x K)
    and `low` (LR features, 100 x K); they start empty and are loaded from a trained file.

    `overlap`: pixels shared by neighbouring patches (4: a patch at every pixel, the
    paper's setting; less is faster and a little worse); `penalty`: the lasso's;
    `back_projection`: iterations (0 to skip); `progress`: a tqdm bar over the patches.
    """

    # Tiles: 20 rounds of bicubic down- and up-sampling in back-projection spread each
    # pixel's error further than any affordable context, so tiles get the deep models' 32
    # LR pixels of context and a 4-pixel blend (what a receptive-field probe would find,
    # after a minute of sparse coding on noise).
    tile_context = (32, 4)

    def __init__(
        self,
        scale: int,
        *,
        atoms: int = ATOMS,
        overlap: int = PATCH - 1,
        penalty: float = PENALTY,
        contrast: float = CONTRAST,
        back_projection: int = BACK_PROJECTION,
        progress: bool = True,
    ) -> None:
        super().__init__()
        if not 0 <= overlap < PATCH:
            raise ValueError(f"overlap must be 0 to {PATCH - 1} pixels, got {overlap}")
        self.scale = scale
        self.overlap = overlap
        self.penalty = penalty
        self.contrast = contrast
        self.back_projection = back_projection
        self.progress = progress
        # Learned by dictionary learning, not by gradients; parameters so they are counted.
        self.high = nn.Parameter(torch.zeros(PATCH * PATCH, atoms))
        self.low = nn.Parameter(torch.zeros(FEATURES * PATCH * PATCH, atoms))

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        """N x 1 x H x W luma in [0, 1] -> N x 1 x sH x sW."""
        if lr.ndim != 4 or lr.shape[1] != 1:
            raise ValueError(f"sparse coding works on the Y channel: expected N x 1 x H x W, "
                             f"got {tuple(lr.shape)}")
        if not bool(self.low.detach().any()):
            raise ValueError(f"sparse-coding x{self.scale} has no dictionary: load one "
                             "(superres.load('sparse-coding', 3) ships x3) or learn one with "
                             "superres.train.dictionary.learn_dictionaries")
        lr = lr.contiguous() * PEAK
        sr = self._patchwise(imresize(lr, self.scale))
        return back_project(sr, lr, self.back_projection) / PEAK

    def _patchwise(self, bicubic: torch.Tensor) -> torch.Tensor:
        """Replace every covered pixel of the bicubic image by its sparse-coded patches'
        average (the paper's Algorithm 1, step 1)."""
        high = self.high.detach()
        low = self.low.detach()
        low = low / low.norm(dim=0).clamp_min(1e-12)  # unit-norm LR atoms, as ScSR.m
        gram = low.T @ low
        step = PATCH - self.overlap
        out = bicubic.clone()
        for index, image in enumerate(bicubic):
            tops = grid_starts(image.shape[-2], step).to(image.device)
            lefts = grid_starts(image.shape[-1], step).to(image.device)
            if tops.numel() == 0 or lefts.numel() == 0:
                continue  # too small for one patch: bicubic, as the border
            features = gradient_features(image[None])[0]
            total = torch.zeros_like(image[0])
            count = torch.zeros_like(image[0])
            rows_per_chunk = max(1, CHUNK // lefts.numel())
            bar = tqdm(total=tops.numel() * lefts.numel(), unit="patch", leave=False,
                       desc=f"sparse coding x{self.scale}", disable=not self.progress)
            for first in range(0, tops.numel(), rows_per_chunk):
                band_tops, band_lefts = torch.meshgrid(
                    tops[first : first + rows_per_chunk], lefts, indexing="ij")
                band_tops, band_lefts = band_tops.flatten(), band_lefts.flatten()
                patches = self._reconstruct(
                    patches_at(image, band_tops, band_lefts),
                    patches_at(features, band_tops, band_lefts), high, low, gram)
                offsets = torch.arange(PATCH, device=image.device)
                rows = (band_tops[:, None] + offsets)[:, :, None].expand(-1, PATCH, PATCH)
                cols = (band_lefts[:, None] + offsets)[:, None, :].expand(-1, PATCH, PATCH)
                total.index_put_((rows, cols), patches.view(-1, PATCH, PATCH), accumulate=True)
                count.index_put_((rows, cols), torch.ones_like(patches).view(-1, PATCH, PATCH),
                                 accumulate=True)
                bar.update(band_tops.numel())
            bar.close()
            covered = count > 0
            out[index, 0][covered] = total[covered] / count[covered]
        return out

    def _reconstruct(self, bicubic: torch.Tensor, features: torch.Tensor, high: torch.Tensor,
                     low: torch.Tensor, gram: torch.Tensor) -> torch.Tensor:
        """HR patches (n x 25) from bicubic patches and their LR features (0-255 units)."""
        mean = bicubic.mean(dim=1, keepdim=True)
        contrast = (bicubic - mean).norm(dim=1, keepdim=True)
        norm = features.norm(dim=1, keepdim=True)
        signals = torch.where(norm > 1, features / norm.clamp_min(1e-12), features)
        codes = lasso(low, signals, self.penalty, gram=gram)
        patches = codes @ high.T
        length = patches.norm(dim=1, keepdim=True)
        scale = torch.where(length > 0, self.contrast * contrast / length.clamp_min(1e-12), 1.0)
        return patches * scale + mean

    def extra_repr(self) -> str:
        return (f"scale={self.scale}, atoms={self.high.shape[1]}, overlap={self.overlap}, "
                f"penalty={self.penalty}, back_projection={self.back_projection}")


SPARSE_CODING = ModelSpec(
    name="sparse-coding",
    summary="Sparse-coding SR (ScSR): coupled 1024-atom dictionaries learned on T91, "
    "lasso codes of 5x5 gradient-feature patches, back-projection, Y channel",
    paper=PAPER,
    scales=(3,),  # the scales with a shipped dictionary
    build=SparseCodingSR,
    color="y",
    framework="pre-upsampling",
    reference={  # the SRCNN paper's SC column (recalled)
        "Set5": {3: (31.42, 0.8821)},
        "Set14": {3: (28.31, 0.7954)},
    },
)
