"""Loading the authors' released checkpoints onto superres's modules: keys renamed to ours,
the architecture read from the tensor shapes, a checkpoint that is not the requested model
refused naming what differs, and files read without running code from them.

`mechanism` is the pipeline every family shares; `edsr` (EDSR, RDN, RCAN), `gan`
(SRResNet/SRGAN, ESRGAN, SRVGG), `matlab` (the authors' MATLAB releases of SRCNN, FSRCNN,
VDSR, LapSRN and MS-LapSRN), `opencv` (OpenCV dnn_superres's TensorFlow graphs) and `reimpl`
(popular PyTorch re-implementations) hold the families' files, layouts and releases;
`families` is the table of them that `convert_file`, `load_released` and `check_release` look
through, and converts `--weights` files on the fly (`prepared_weights`); `catalogue` lists
the releases for `superres weights list|download`.
"""

from superres.models.convert.families import (
    FAMILIES,
    RELEASES,
    Converted,
    MissingScale,
    check_release,
    convert_file,
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
    "Converted",
    "Family",
    "Layout",
    "MissingScale",
    "ReleasedWeights",
    "check_release",
    "convert_file",
    "convert_state_dict",
    "find_model",
    "load_released",
    "mismatch_error",
]
