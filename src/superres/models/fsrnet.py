"""FSRNet: Chen, Tai, Liu, Shen and Yang, "FSRNet: End-to-End Learning Face Super-Resolution
with Facial Priors", CVPR 2018. Face hallucination, the survey's domain-specific SR for faces:
the LR face is bicubic-upsampled to HR size (pre-upsampling), a coarse SR network (conv, 3
residual blocks, conv) restores a coarse face, and from it two branches at half the HR size: a
fine SR encoder (stride-2 conv, 12 residual blocks, conv) and a prior estimation network
(stride-2 7x7 conv, 3 residual blocks, 2 stacked hourglasses) that predicts the 68 landmark
heatmaps (and, in the paper, 11 parsing maps). The fine SR decoder reads the encoder's
features concatenated with the prior (conv, 4x4 transposed conv back to HR size, 3 residual
blocks, conv). The loss supervises the coarse and the fine face and the heatmaps (weight 1,
as sums of squares); the paper's "w/o prior" baseline is the same network without the prior
branch (`landmarks=0`), whose decoder reads the encoder's features alone.

Deviations, each because of the data or the CPU: no parsing maps (the training faces have
landmarks only); the residual blocks are EDSR's (no batch norm) from `superres.nn.blocks`;
the coarse and fine outputs add to the upsampled input and to the coarse face (global
residual learning, which trains in far fewer steps); `fsrnet-s` is the network sized for a
2-core CPU (24 channels instead of 64, and fewer blocks: see `CPU_SIZE`; 0.83 GMAC per
128x128 face instead of 13.9), with the heatmaps weighted 4 (`CPU_PRIOR_WEIGHT`) and drawn
with sigma 2 on the 64-pixel grid. Inputs of any size are padded (edge pixels repeated) to a
multiple of the hourglass's grid and cropped back. Trained on 1152 aligned faces, RGB, and
meant for faces aligned like them (docs/face.md measures the test sets' alignment).

The paper's x8 PSNR, recalled and not checked against it here: 26.48 dB on Helen's 50 test
faces and 26.31 on CelebA's 1000 (its channel is not confirmed). docs/face.md puts them beside
ours on Y and RGB, with bicubic, the authors' LapSRN and the no-prior ablation.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from superres.models.registry import ModelSpec
from superres.nn.blocks.hourglass import Hourglass
from superres.nn.blocks.residual import ResidualBlock
from superres.nn.layers import conv
from superres.nn.supervision import LossFn, MultiSupervised
from superres.nn.upsamplers import Interpolate

PAPER = ("Chen, Tai, Liu, Shen and Yang, FSRNet: End-to-End Learning Face Super-Resolution "
         "with Facial Priors, CVPR 2018")
LANDMARKS = 68
# The paper's sizes are `FSRNet`'s defaults; these are `fsrnet-s`'s, trained on a 2-core CPU.
CPU_SIZE: dict[str, int] = {"channels": 24, "coarse_blocks": 1, "encoder_blocks": 4,
                            "prior_blocks": 1, "hourglasses": 1, "hourglass_depth": 3,
                            "decoder_blocks": 1}
# fsrnet-s's heatmap weight: with the paper's 1, 500 steps left every heatmap's peak at the
# image's border (mean point error 85 HR pixels on the training faces); trained this briefly,
# the prior branch must be pulled harder towards the landmarks.
CPU_PRIOR_WEIGHT = 4.0


def _trunk(in_channels: int, channels: int, kernel: int, stride: int, blocks: int,
           *tail: nn.Module) -> nn.Sequential:
    """A convolution (stride 2 halves the grid), ReLU, residual blocks, then `tail`."""
    head = nn.Conv2d(in_channels, channels, kernel, stride, padding=kernel // 2)
    return nn.Sequential(head, nn.ReLU(inplace=True),
                         *(ResidualBlock(channels) for _ in range(blocks)), *tail)


class FSRNet(MultiSupervised):
    """FSRNet at `scale`; `landmarks=0` leaves out the prior branch (the paper's baseline)."""

    def __init__(
        self, scale: int, channels: int = 64, coarse_blocks: int = 3, encoder_blocks: int = 12,
        prior_blocks: int = 3, hourglasses: int = 2, hourglass_depth: int = 4,
        decoder_blocks: int = 3, landmarks: int = LANDMARKS, prior_weight: float = 1.0,
    ) -> None:
        super().__init__()
        self.scale, self.landmarks = scale, landmarks
        self.loss_weights = {"prior": prior_weight}  # type: ignore[misc]
        self.targets = ("heatmaps",) if landmarks else ()
        self.multiple = 2 ** (hourglass_depth + 1)  # the encoders halve, the hourglass more
        self.upsample = Interpolate(scale)
        self.coarse = _trunk(3, channels, 3, 1, coarse_blocks, conv(channels, 3, 3))
        self.encoder = _trunk(3, channels, 3, 2, encoder_blocks, conv(channels, channels, 3))
        self.prior: nn.Module | None = None
        if landmarks:
            stack = [Hourglass(channels, hourglass_depth) for _ in range(hourglasses)]
            self.prior = _trunk(3, channels, 7, 2, prior_blocks, *stack,
                                nn.Conv2d(channels, landmarks, 1))
        self.decoder = nn.Sequential(
            conv(channels + landmarks, channels, 3), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(channels, channels, 4, stride=2, padding=1),
            nn.ReLU(inplace=True), *(ResidualBlock(channels) for _ in range(decoder_blocks)),
            conv(channels, 3, 3))

    def outputs(self, lr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """The coarse face, the fine face (both at HR size) and the landmark heatmaps at half
        the HR size (None without the prior branch)."""
        upsampled = self.upsample(lr)
        height, width = upsampled.shape[-2:]
        pad_h, pad_w = (-height) % self.multiple, (-width) % self.multiple
        if pad_h or pad_w:
            upsampled = F.pad(upsampled, (0, pad_w, 0, pad_h), mode="replicate")
        coarse = upsampled + self.coarse(upsampled)
        features = self.encoder(coarse)
        heatmaps = self.prior(coarse) if self.prior is not None else None
        prior = features if heatmaps is None else torch.cat([features, heatmaps], dim=1)
        fine = coarse + self.decoder(prior)
        crop = (..., slice(0, height), slice(0, width))
        half = (..., slice(0, (height + 1) // 2), slice(0, (width + 1) // 2))
        return coarse[crop], fine[crop], None if heatmaps is None else heatmaps[half]

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        return self.outputs(lr)[1]

    def training_loss(self, lr: torch.Tensor, hr: torch.Tensor, loss_fn: LossFn, step: int,
                      *targets: torch.Tensor) -> torch.Tensor:
        """Pixel loss on the coarse and the fine face, plus, with the prior branch,
        `loss_weights["prior"]` times the heatmaps' squared error (the first of `targets`)
        summed and divided by the HR elements: weight 1 is the paper's, between sums of
        squares, in a mean pixel loss's units."""
        coarse, fine, heatmaps = self.outputs(lr)
        loss = loss_fn(coarse, hr) + loss_fn(fine, hr)
        if heatmaps is None:
            return loss
        if not targets:
            raise ValueError("FSRNet's prior branch learns from landmark heatmaps: train it on "
                             "faces with landmarks (data.landmarks: true)")
        heatmap_loss = F.mse_loss(heatmaps, targets[0], reduction="sum") / hr.numel()
        return loss + self.loss_weights["prior"] * heatmap_loss


def fsrnet_s(scale: int, prior: bool = True) -> FSRNet:
    """FSRNet at CPU size (`CPU_SIZE`), with or without the prior branch."""
    return FSRNet(scale, **CPU_SIZE, landmarks=LANDMARKS if prior else 0,
                  prior_weight=CPU_PRIOR_WEIGHT)


FSRNET_S = ModelSpec(
    name="fsrnet-s",
    summary="FSRNet face SR at CPU size: coarse SR, landmark-heatmap prior (hourglass), fine "
    "SR encoder and decoder conditioned on the prior, RGB, 128x128 faces",
    paper=PAPER,
    scales=(4, 8),
    build=fsrnet_s,
    color="rgb",
    framework="pre-upsampling",
)

FSRNET_S_NOPRIOR = ModelSpec(
    name="fsrnet-s-noprior",
    summary="fsrnet-s without its prior branch (the paper's 'w/o prior' ablation): coarse SR, "
    "fine SR encoder and decoder, RGB",
    paper=PAPER,
    scales=(4, 8),
    build=lambda scale: fsrnet_s(scale, prior=False),
    color="rgb",
    framework="pre-upsampling",
)
