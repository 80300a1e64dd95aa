"""Named models: the explicit registry of everything `superres` can build."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from superres.models.composed import DESCRIPTION_SUFFIXES, compose, compose_file
from superres.models.dbpn import DBPN
from superres.models.dip import DIP
from superres.models.djf import DJF
from superres.models.drcn import DRCN
from superres.models.edsr import EDSR, EDSR_BASELINE
from superres.models.espcn import ESPCN
from superres.models.esrgan import ESRGAN, PHOTO, RRDB, SRVGG, SRVGG_S
from superres.models.fsrcnn import FSRCNN, FSRCNN_S
from superres.models.fsrnet import FSRNET_S, FSRNET_S_NOPRIOR
from superres.models.interpolation import BICUBIC, BILINEAR, LANCZOS, NEAREST
from superres.models.lapsrn import LAPSRN, MS_LAPSRN
from superres.models.learned_jbu import LEARNED_JBU
from superres.models.rcan import RCAN
from superres.models.rdn import RDN
from superres.models.registry import ModelSpec
from superres.models.sparse_coding import SPARSE_CODING
from superres.models.srcnn import SRCNN, SRCNN_915
from superres.models.srdensenet import SRDENSENET, SRDENSENET_H, SRDENSENET_HL
from superres.models.srresnet import SRGAN, SRRESNET
from superres.models.unpaired import CINCGAN
from superres.models.vdsr import VDSR
from superres.models.vespcn import (
    VESPCN_5_DEEP_SPEC,
    VESPCN_5_SPEC,
    VESPCN_DEEP_SPEC,
    VESPCN_SPEC,
)
from superres.models.zssr import ZSSR

MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        NEAREST, BILINEAR, BICUBIC, LANCZOS,  # interpolation
        SPARSE_CODING,  # shallow learning: coupled sparse-coding dictionaries
        SRCNN, SRCNN_915, FSRCNN, FSRCNN_S, ESPCN,  # the first CNNs
        VDSR, DRCN, LAPSRN, MS_LAPSRN,  # very deep, recursive, progressive
        SRDENSENET_H, SRDENSENET_HL, SRDENSENET, DBPN,  # dense skips, back-projection
        EDSR_BASELINE, EDSR, RDN, RCAN,  # deep residual, residual-dense, channel attention
        SRRESNET, SRGAN, RRDB, ESRGAN, SRVGG,  # perceptual SR: SRGAN, ESRGAN, compact GAN
        SRVGG_S,  # the compact GAN's generator at CPU-demo size
        PHOTO,  # the compact generator trained on realistic degradations, for real photos
        ZSSR, DIP,  # unsupervised: learned at test time from the LR image alone
        CINCGAN,  # unpaired: cycle-in-cycle GAN, trained without LR/HR pairs
        VESPCN_SPEC, VESPCN_5_SPEC,  # video: frames t-1..t+1 or t-2..t+2, motion-compensated
        VESPCN_DEEP_SPEC, VESPCN_5_DEEP_SPEC,  # the same with a deeper SR network
        FSRNET_S, FSRNET_S_NOPRIOR,  # faces: SR with a landmark prior, and without it
        DJF, LEARNED_JBU,  # depth maps guided by colour: two-branch CNN, learned JBU
    )
}


def get_model(name: str | Path | Mapping[str, Any]) -> ModelSpec:
    """The spec of a registered model (case-insensitive; unknown names list the known ones),
    or of a composed one: a description mapping, or a YAML file holding one (see
    `superres.models.composed`)."""
    if isinstance(name, Mapping) or Path(name).suffix.lower() in DESCRIPTION_SUFFIXES:
        spec = compose(name) if isinstance(name, Mapping) else compose_file(Path(name))
        if spec.name.lower() in MODELS:  # its shipped weights would be taken for this model's
            raise ValueError(f"composed model name {spec.name!r} is a registered model's; "
                             "choose another name")
        return spec
    spec = MODELS.get(str(name).lower())
    if spec is None:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(MODELS)}")
    return spec


def default_model(scale: int) -> ModelSpec:
    """The best model usable at `scale` without downloads: the shipped weights with the
    highest measured Set5 PSNR by the standard protocol, or bicubic when none is shipped for
    that scale."""
    from superres.weights import shipped_weights

    candidates = [w for w in shipped_weights()
                  if w.scale == scale and w.clean and w.natural_images]
    if candidates:
        return MODELS[max(candidates, key=lambda w: w.scores["Set5"][0]).model]
    spec = MODELS["bicubic"]
    spec.check_scale(scale)
    return spec


__all__ = ["MODELS", "ModelSpec", "default_model", "get_model"]
