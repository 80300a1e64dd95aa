"""The protocol is right: bicubic reproduces the published baseline on every set and scale.

Published (Y channel, shave = scale): Set5 x2 33.66 / 0.9299, Set14 x2 30.24 / 0.8688,
BSD100 x2 29.56 / 0.8431, ... (EDSR, LapSRN, RCAN and ESRGAN comparison tables).
"""

import json

import pytest

from superres.cli import main
from superres.models import get_model

SETS = ["Set5", "Set14", "BSD100"]


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_matches_published_psnr_and_ssim(scale, capsys, require_dataset):
    for name in SETS:
        require_dataset(name)
    args = ["eval", "-m", "bicubic", "-s", str(scale), "--json", "-q"]
    for name in SETS:
        args += ["-d", name]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"] == "bicubic" and report["scale"] == scale
    published = get_model("bicubic").reference
    for result in report["results"]:
        psnr, ssim = published[result["dataset"]][scale]
        assert result["psnr"] == pytest.approx(psnr, abs=0.03), result
        assert result["ssim"] == pytest.approx(ssim, abs=0.0015), result
    assert [r["images"] for r in report["results"]] == [5, 14, 100]
