"""The GAN stage of perceptual SR (SRGAN, ESRGAN): a discriminator, its optimiser, and the
generator's weighted sum of pixel, perceptual and adversarial losses.

The trainer composes it with any generator: it is the second of the two-stage recipe (a
PSNR-oriented run first, then this stage starting from its weights via `init`). The network,
the losses and the loop stay separate; this object owns only what the GAN stage adds.
"""

from __future__ import annotations

from typing import Any

import torch

from superres.models.discriminators import esrgan_discriminator, srgan_discriminator
from superres.train.losses import PerceptualLoss, adversarial_loss, pixel_loss
from superres.train.recipe import Adversarial

DISCRIMINATORS = {"srgan": srgan_discriminator, "esrgan": esrgan_discriminator}


class AdversarialStage:
    """One discriminator update, then the generator's loss, per training step."""

    def __init__(self, config: Adversarial, hr_patch: int, pixel: str, base_lr: float) -> None:
        if config.discriminator not in DISCRIMINATORS:
            raise ValueError(f"unknown discriminator {config.discriminator!r}; choose from "
                             f"{', '.join(DISCRIMINATORS)}")
        self.config = config
        self.base_lr = base_lr  # the generator's; D's rate follows the same schedule shape
        self.last_d_loss = float("nan")
        self.discriminator = DISCRIMINATORS[config.discriminator](hr_patch)
        self.optimizer = torch.optim.Adam(
            self.discriminator.parameters(), lr=config.lr, betas=config.betas
        )
        self.gan = adversarial_loss(config.gan_loss)
        self.pixel = pixel_loss(pixel)
        # Never random features: PerceptualLoss refuses to start without VGG weights.
        self.perceptual = (
            PerceptualLoss(dict(config.perceptual_layers), config.perceptual_criterion)
            if config.perceptual_weight else None
        )

    def generator_loss(self, sr: torch.Tensor, hr: torch.Tensor, lr_now: float) -> torch.Tensor:
        """Update D on (hr, sr.detach()), then return G's weighted loss for `sr`."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr_now * self.config.lr / self.base_lr
        self.discriminator.requires_grad_(True)
        d_loss = self.gan.discriminator_loss(
            self.discriminator(hr), self.discriminator(sr.detach())
        )
        self.optimizer.zero_grad(set_to_none=True)
        d_loss.backward()
        self.optimizer.step()
        self.last_d_loss = float(d_loss.detach())

        self.discriminator.requires_grad_(False)  # G's step must not move D
        cfg = self.config
        real = self.discriminator(hr).detach() if self.gan.relativistic else None
        loss = cfg.weight * self.gan.generator_loss(self.discriminator(sr), real)
        if cfg.pixel_weight:
            loss = loss + cfg.pixel_weight * self.pixel(sr, hr)
        if self.perceptual is not None:
            loss = loss + cfg.perceptual_weight * self.perceptual(sr, hr)
        return loss

    def state_dict(self) -> dict[str, Any]:
        return {"discriminator": self.discriminator.state_dict(),
                "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.discriminator.load_state_dict(state["discriminator"])
        self.optimizer.load_state_dict(state["optimizer"])


def interpolate_weights(
    psnr: dict[str, torch.Tensor], gan: dict[str, torch.Tensor], alpha: float
) -> dict[str, torch.Tensor]:
    """ESRGAN's network interpolation: (1 - alpha) * PSNR weights + alpha * GAN weights, a
    knob between fidelity (alpha 0) and texture (alpha 1) without retraining."""
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1], not {alpha}")
    if psnr.keys() != gan.keys():
        differing = sorted(psnr.keys() ^ gan.keys())
        raise ValueError(f"the two weight sets differ in keys: {differing}")
    wrong = [k for k in psnr if psnr[k].shape != gan[k].shape]
    if wrong:
        raise ValueError(f"the two weight sets differ in shape at {wrong}")
    return {k: torch.lerp(psnr[k].float(), gan[k].float(), alpha).to(psnr[k].dtype) for k in psnr}
