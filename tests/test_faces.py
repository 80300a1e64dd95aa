"""The FSRNet face test sets and the face training crops: registry, manifests, RGB protocol.

They read the real images from $SUPERRES_DATA/Faces and are skipped when it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

from superres import load
from superres.data import dataset_images, get_dataset, verify_dataset
from superres.evaluation import default_channel, evaluate_dataset

FACE_SETS = {"FaceHelen50": 50, "FaceCelebA1000": 1000, "FaceTrain": 1152}

pytestmark = pytest.mark.skipif(
    not (Path(os.environ.get("SUPERRES_DATA", "/nonexistent")) / "Faces").is_dir(),
    reason="needs the face sets in $SUPERRES_DATA/Faces (see docs/face.md)",
)


@pytest.mark.parametrize("name", FACE_SETS)
def test_face_sets_resolve_in_their_sub_folder_and_verify(name: str) -> None:
    spec = get_dataset(name)
    resolved, paths = dataset_images(name)
    assert resolved == name and len(paths) == FACE_SETS[name] == spec.images
    assert paths[0].parent.parent.name == "Faces" and paths[0].suffix == ".jpg"
    report = verify_dataset(name)
    assert report.ok and report.manifest and report.checked == spec.images
    assert not report.by_pixels  # the released JPEG bytes themselves


@pytest.mark.parametrize("name", ["FaceHelen50", "FaceTrain"])
def test_face_images_are_128_rgb(name: str) -> None:
    for path in dataset_images(name)[1]:
        with Image.open(path) as im:
            assert (im.size, im.mode) == ((128, 128), "RGB"), path.name


def test_face_sets_score_on_rgb_others_on_y() -> None:
    assert default_channel("FaceHelen50") == default_channel("FaceCelebA1000") == "rgb"
    assert default_channel("Set5") == default_channel("some/folder") == "y"


def test_bicubic_x8_on_helen50_gives_the_documented_numbers() -> None:
    """docs/face.md: 22.388 dB / 0.6213 on RGB; Y when asked for is higher."""
    upscaler = load("bicubic", 8)
    result = evaluate_dataset(upscaler, "FaceHelen50", progress=False)
    assert result.channel == "rgb" and result.images == 50
    assert (round(result.psnr, 3), round(result.ssim, 4)) == (22.388, 0.6213)
    on_y = evaluate_dataset(upscaler, "FaceHelen50", channel="y", progress=False)
    assert on_y.channel == "y" and on_y.psnr > result.psnr
