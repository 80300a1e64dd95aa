"""Loading the authors' released checkpoints onto superres's modules: keys renamed to ours,
the architecture read from the tensor shapes, a checkpoint that is not the requested model
refused naming what differs, and files read without running code from them.

`mechanism` is the pipeline every family shares; `edsr` (EDSR, RDN, RCAN) and `gan`
(SRResNet/SRGAN, ESRGAN, SRVGG) hold the families' layouts and releases; `families` is the
table of them that `load_released` and `check_release` look through.
"""

from superres.models.convert.families import (
    FAMILIES,
    RELEASES,
    check_release,
    convert_state_dict,
    load_released,
)
from superres.models.convert.mechanism import (
    Architecture,
    Family,
    Layout,
    ReleasedWeights,
    find_model,
    mismatch_error,
)

__all__ = [
    "FAMILIES",
    "RELEASES",
    "Architecture",
    "Family",
    "Layout",
    "ReleasedWeights",
    "check_release",
    "convert_state_dict",
    "find_model",
    "load_released",
    "mismatch_error",
]
