"""The adversarial part of a training objective (SRGAN, ESRGAN): a discriminator D, its own
optimiser, and D's update, so that the generator's loss can include how D judges SR.

`superres.train.objective.Objective` owns one when the recipe's losses hold an adversarial
term (the `gan` stage is one such recipe). The generator, the other terms and the loop stay
separate; this object owns only what the adversarial term adds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from superres.models.discriminators import (
    esrgan_discriminator,
    srgan_discriminator,
    unet_discriminator,
)
from superres.train.losses import AdversarialLoss, adversarial_loss

DISCRIMINATORS: dict[str, Callable[..., nn.Module]] = {
    "srgan": srgan_discriminator, "esrgan": esrgan_discriminator, "unet": unet_discriminator,
}
# The discriminators whose base width a recipe may shrink (`width:`), for a CPU's budget.
SCALABLE_WIDTH = ("unet",)


class Critic(nn.Module):
    """D's loss on a real and a fake batch: one module, so that one forward pass of a
    distributed wrapper covers both of D's passes before their backward."""

    def __init__(self, discriminator: nn.Module, gan: AdversarialLoss) -> None:
        super().__init__()
        self.discriminator, self.gan = discriminator, gan

    def forward(self, hr: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return self.gan.discriminator_loss(self.discriminator(hr), self.discriminator(fake))


class Adversary:
    """D, its Adam optimiser and the GAN loss: one D update per generator step, then G's
    adversarial loss through the updated D (which G's step must not move)."""

    def __init__(self, discriminator: str, gan_loss: str, hr_patch: int, lr: float,
                 betas: Sequence[float], base_lr: float, width: int | None = None) -> None:
        if discriminator not in DISCRIMINATORS:
            raise ValueError(f"unknown discriminator {discriminator!r}; choose from "
                             f"{', '.join(DISCRIMINATORS)}")
        if width is not None and discriminator not in SCALABLE_WIDTH:
            raise ValueError(f"a width applies to the {', '.join(SCALABLE_WIDTH)} "
                             f"discriminator, not {discriminator!r}")
        self.lr, self.base_lr = lr, base_lr  # D's base rate, and G's
        self.last_d_loss = math.nan
        options = {} if width is None else {"width": width}
        self.discriminator = DISCRIMINATORS[discriminator](hr_patch, **options)
        self.optimizer = torch.optim.Adam(self.discriminator.parameters(), lr=lr,
                                          betas=tuple(betas))
        self.gan = adversarial_loss(gan_loss)
        self.critic: nn.Module = Critic(self.discriminator, self.gan)

    def distribute(self, wrap: Callable[[nn.Module], nn.Module]) -> None:
        """Run D's update through `wrap` (DistributedDataParallel), so that its gradients
        are averaged over the ranks; G's pass through the frozen D needs no wrapper."""
        self.critic = wrap(self.critic)

    def discriminator_step(self, sr: torch.Tensor, hr: torch.Tensor, rate: float) -> None:
        """Update D on (hr, sr.detach()); D's rate follows the shape of G's schedule: `rate`
        (G's now) times D's base rate over G's."""
        for group in self.optimizer.param_groups:
            group["lr"] = rate * self.lr / self.base_lr
        self.discriminator.requires_grad_(True)
        d_loss = self.critic(hr, sr.detach())
        self.optimizer.zero_grad(set_to_none=True)
        d_loss.backward()
        self.optimizer.step()
        self.last_d_loss = float(d_loss.detach())

    def generator_loss(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        """G's adversarial loss for `sr`; D is frozen, and judges `hr` only for a relativistic
        loss (as constants)."""
        self.discriminator.requires_grad_(False)
        real = self.discriminator(hr).detach() if self.gan.relativistic else None
        return self.gan.generator_loss(self.discriminator(sr), real)

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
