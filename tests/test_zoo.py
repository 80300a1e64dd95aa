"""Every shipped network measures, on Set5, exactly what its zoo entry and model card say,
and beats bicubic there (a photo model on its realistic LR); the default model for a scale is
the best shipped one by the standard protocol; and the run that made it is in checkpoints/,
from its first weights to its best."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import superres
from superres.evaluation import evaluate_dataset
from superres.files import file_digest
from superres.models import default_model
from superres.weights import shipped_weights

# Sparse coding has its own check on a crop (tests/test_sparse_coding.py): its Set5 run is
# minutes of lasso solves, not seconds of convolutions. Face models are measured on the face
# sets instead (tests/test_face.py).
NETWORKS = [w for w in shipped_weights() if w.model != "sparse-coding" and w.natural_images]
BICUBIC_SET5 = {2: 33.66, 3: 30.39, 4: 28.42}  # published_results.md
CHECKPOINTS = Path(__file__).resolve().parent.parent / "checkpoints"


@pytest.mark.parametrize("weights", NETWORKS, ids=lambda w: f"{w.model}_x{w.scale}")
def test_shipped_weights_reproduce_their_recorded_set5_score(weights, require_dataset,
                                                             one_thread):
    require_dataset("Set5")
    score = evaluate_dataset(superres.load(weights.model, weights.scale), "Set5",
                             progress=False, degradation=weights.degradation)
    # within rounding of the recorded figures (another CPU may sum float32 in another order)
    assert score.psnr == pytest.approx(weights.scores["Set5"][0], abs=1e-3)
    assert score.ssim == pytest.approx(weights.scores["Set5"][1], abs=1e-4)
    # and above bicubic on the same LR: the papers' figure, or measured on realistic LR
    bicubic = BICUBIC_SET5[weights.scale] if weights.clean else evaluate_dataset(
        superres.load("bicubic", weights.scale), "Set5", progress=False,
        degradation=weights.degradation).psnr
    assert score.psnr > bicubic + 0.5


def test_a_photo_model_is_shipped_with_realistic_scores_and_never_chosen_as_the_default():
    photo = [w for w in shipped_weights() if not w.clean]
    assert {(w.model, w.scale, w.degradation) for w in photo} == {
        ("photo", 2, "realesrgan"), ("photo", 4, "realesrgan")}
    assert all(default_model(w.scale).name != w.model for w in photo)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_default_model_is_the_best_shipped_at_its_scale(scale):
    shipped = [w for w in shipped_weights()
               if w.scale == scale and w.clean and w.natural_images]
    assert shipped, f"no network shipped at x{scale}"
    best = max(shipped, key=lambda w: w.scores["Set5"][0])
    assert default_model(scale).name == best.model


@pytest.mark.parametrize("weights", NETWORKS, ids=lambda w: f"{w.model}_x{w.scale}")
def test_shipped_weights_are_the_best_of_a_committed_run_that_can_be_rerun(weights):
    # The run folder is named for its recipe and holds these very weights as its best...
    run = CHECKPOINTS / weights.recipe
    assert file_digest(run / "best.safetensors") == weights.sha256
    if not weights.init:
        return
    # ...and a run that started from other weights names a committed file, still the same.
    start = re.fullmatch(r"(checkpoints/\S+) \(sha256 ([0-9a-f]{64})\)", weights.init)
    assert start, f"init {weights.init!r} names no checkpoint file with its sha256"
    assert file_digest(CHECKPOINTS.parent / start[1]) == start[2]
