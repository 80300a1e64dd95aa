"""Face SR with a facial prior (FSRNet): landmark heatmaps, their mirroring, the network and
its ablation, the face sampler, and training on faces with landmarks (tiny stand-in faces)."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.nn import functional as F

from superres import load
from superres.data.landmarks import (
    FLIP_PERMUTATION,
    POINTS,
    dataset_landmarks,
    flip_landmarks,
    render_heatmaps,
)
from superres.evaluation import evaluate_dataset
from superres.files import file_digest
from superres.image.degrade import bicubic_lr
from superres.models import get_model
from superres.models.fsrnet import FSRNet
from superres.nn.blocks.hourglass import Hourglass
from superres.train.faces import HEATMAP_SIGMA, HEATMAP_STRIDE, Face, FaceSampler, Jitter
from superres.train.recipe import parse_recipe
from superres.train.trainer import train
from superres.weights import load_weights, shipped_weights

FACE_DATA = Path(os.environ.get("SUPERRES_DATA", "/nonexistent")) / "Faces"
CHECKPOINTS = Path(__file__).resolve().parent.parent / "checkpoints"
SHIPPED = [w for w in shipped_weights() if w.model in ("fsrnet-s", "fsrnet-s-noprior")]
TINY = {"channels": 4, "coarse_blocks": 1, "encoder_blocks": 1, "prior_blocks": 1,
        "hourglasses": 1, "hourglass_depth": 2, "decoder_blocks": 1}


def _face_points(size: int = 128) -> np.ndarray:
    """68 distinct points laid out like an aligned face: left eye (36-41) near (44, 54) and
    right eye (42-47) near (84, 54) in a 128-pixel crop, scaled to `size`."""
    rng = np.random.default_rng(0)
    points = rng.uniform(20, 108, size=(POINTS, 2))
    points[36:42] = np.array([44, 54]) + rng.uniform(-3, 3, size=(6, 2))
    points[42:48] = np.array([84, 54]) + rng.uniform(-3, 3, size=(6, 2))
    return points * size / 128


def test_a_heatmap_peaks_at_its_landmark():
    points = np.array([[10.0, 20.0], [3.0, 30.0]])
    maps = render_heatmaps(points, 40)
    assert maps.shape == (2, 40, 40) and maps.dtype == np.float32
    for heatmap, (x, y) in zip(maps, points, strict=True):
        assert np.unravel_index(heatmap.argmax(), heatmap.shape) == (y, x)
        assert heatmap.max() == pytest.approx(1.0)


def test_a_heatmap_is_centred_at_the_sub_pixel_position_on_the_coarser_grid():
    """Image pixel centre x lies at (x + 0.5) / stride - 0.5 of a grid `stride` times coarser:
    (20.5, 9.0) at stride 2 is (10.0, 4.25), the Gaussian's centroid."""
    heatmap = render_heatmaps(np.array([[20.5, 9.0]]), 24, stride=2, sigma=1.0)[0]
    rows, cols = np.mgrid[0:24, 0:24]
    total = heatmap.sum()
    assert (heatmap * cols).sum() / total == pytest.approx(10.0, abs=1e-4)
    assert (heatmap * rows).sum() / total == pytest.approx(4.25, abs=1e-4)
    assert np.unravel_index(heatmap.argmax(), heatmap.shape) == (4, 10)


def test_heatmaps_refuse_points_that_are_not_x_y_pairs():
    with pytest.raises(ValueError, match="N x 2"):
        render_heatmaps(np.zeros((68, 3)), 16)


def test_the_flip_permutation_swaps_left_and_right_points_and_is_its_own_inverse():
    assert sorted(FLIP_PERMUTATION) == list(range(POINTS))
    assert (FLIP_PERMUTATION[FLIP_PERMUTATION] == np.arange(POINTS)).all()
    assert FLIP_PERMUTATION[0] == 16 and FLIP_PERMUTATION[36] == 45  # jaw, outer eye corners
    assert FLIP_PERMUTATION[48] == 54 and FLIP_PERMUTATION[30] == 30  # mouth corners, nose tip
    points = _face_points()
    flipped = flip_landmarks(points, 128)
    # The mirrored face's left eye is still on the image's left, and is the right eye mirrored.
    assert flipped[36:42, 0].max() < 64 < flipped[42:48, 0].min()
    assert np.allclose(flipped[36], [127 - points[45, 0], points[45, 1]])
    assert np.allclose(flip_landmarks(flipped, 128), points)


def test_the_heatmaps_of_mirrored_landmarks_are_the_mirrored_heatmaps_permuted():
    points = _face_points()
    maps = render_heatmaps(points, 64, stride=2)
    mirrored = render_heatmaps(flip_landmarks(points, 128), 64, stride=2)
    assert np.allclose(mirrored, maps[FLIP_PERMUTATION][:, :, ::-1], atol=1e-6)


def test_an_hourglass_keeps_the_grid_and_refuses_no_halving():
    hourglass = Hourglass(4, depth=2)
    assert hourglass(torch.rand(1, 4, 16, 12)).shape == (1, 4, 16, 12)
    with pytest.raises(ValueError, match="at least once"):
        Hourglass(4, depth=0)


@pytest.mark.parametrize("scale", [4, 8])
def test_fsrnet_upscales_any_size_and_predicts_heatmaps_at_half_the_hr_size(scale):
    model = FSRNet(scale, **TINY)
    lr = torch.rand(2, 3, 5, 7)  # padded to the hourglass grid inside, cropped back
    coarse, fine, heatmaps = model.outputs(lr)
    assert coarse.shape == fine.shape == (2, 3, 5 * scale, 7 * scale)
    assert heatmaps is not None and heatmaps.shape == (2, 68, 5 * scale // 2, 7 * scale // 2)
    assert torch.equal(model(lr), fine)


def test_the_shipped_sizes_have_the_documented_parameter_counts():
    """docs/models/fsrnet-s.md: 219,314 with the prior, 84,798 without; the paper's sizes
    (64 channels, 3/12/3 residual blocks, 2 hourglasses of 4 halvings) give 3,670,794."""
    assert get_model("fsrnet-s").params(8) == 219_314
    assert get_model("fsrnet-s-noprior").params(8) == 84_798
    with torch.device("meta"):
        paper = FSRNet(8)
    assert sum(p.numel() for p in paper.parameters()) == 3_670_794


def test_the_heatmap_loss_trains_the_prior_branch_and_the_ablation_has_none():
    model = FSRNet(8, **TINY)
    lr, hr, heatmaps = torch.rand(2, 3, 4, 4), torch.rand(2, 3, 32, 32), torch.rand(2, 68, 16, 16)
    model.training_loss(lr, hr, F.mse_loss, 0, heatmaps).backward()
    assert model.prior is not None and all(p.grad is not None for p in model.prior.parameters())
    with pytest.raises(ValueError, match="landmark heatmaps"):
        model.training_loss(lr, hr, F.mse_loss, 0)
    ablation = FSRNet(8, **TINY, landmarks=0)
    assert ablation.prior is None and ablation.targets == () and model.targets == ("heatmaps",)
    coarse, fine, _ = ablation.outputs(lr)
    expected = F.mse_loss(coarse, hr) + F.mse_loss(fine, hr)
    assert torch.allclose(ablation.training_loss(lr, hr, F.mse_loss, 0, heatmaps), expected)


def _faces(count: int) -> list[Face]:
    rng = np.random.default_rng(1)
    return [Face(rng.random((32, 32, 3), dtype=np.float32), rng.random((4, 4, 3), dtype=np.float32),
                 _face_points(32)) for _ in range(count)]


def test_the_face_sampler_mirrors_faces_and_their_heatmaps_together_and_resumes():
    faces = _faces(3)
    sampler = FaceSampler(faces, batch=6, augment=True, seed=0)
    state = sampler.state_dict()
    lr, hr, heatmaps = sampler.next_batch()
    assert lr.shape == (6, 3, 4, 4) and hr.shape == (6, 3, 32, 32)
    assert heatmaps.shape == (6, 68, 16, 16)
    plain = {id(face): render_heatmaps(face.landmarks, 16, HEATMAP_STRIDE, HEATMAP_SIGMA)
             for face in faces}
    flips = 0
    for image, maps in zip(hr.numpy(), heatmaps.numpy(), strict=True):
        face = next(f for f in faces if np.array_equal(f.hr, image.transpose(1, 2, 0))
                    or np.array_equal(f.hr[:, ::-1], image.transpose(1, 2, 0)))
        flipped = not np.array_equal(face.hr, image.transpose(1, 2, 0))
        expected = plain[id(face)][FLIP_PERMUTATION][:, :, ::-1] if flipped else plain[id(face)]
        assert np.allclose(maps, expected, atol=1e-6)
        flips += flipped
    assert 0 < flips < 6  # seed 0 mirrors some, not all
    sampler.load_state_dict(state)
    assert all(torch.equal(a, b) for a, b in zip(sampler.next_batch(), (lr, hr, heatmaps),
                                                   strict=True))


def test_a_jitter_moves_the_landmarks_with_the_pixels():
    """A bright dot drawn at each of three points stays under its point however the crop is
    zoomed and shifted (to a pixel: the dot is blurred by the resampling)."""
    points = np.array([[20.0, 25.0], [70.0, 30.0], [50.0, 20.0]])
    image = np.zeros((48, 96, 3), np.float32)  # not square: each axis has its own centre
    for x, y in points.astype(int):
        image[y - 1 : y + 2, x - 1 : x + 2] = 1.0
    for jitter in (Jitter(1.0, (4.0, -6.0)), Jitter(1.25, (-3.0, 5.0)), Jitter(0.8, (2.5, 0.0))):
        moved, where = jitter.pixels(image), jitter.points(points, image.shape)
        assert moved.dtype == np.uint8 and moved.shape == image.shape
        for x, y in where:
            window = moved[round(y) - 3 : round(y) + 4, round(x) - 3 : round(x) + 4, 0]
            peak = np.unravel_index(window.argmax(), window.shape)
            assert abs(peak[0] - 3) <= 1 and abs(peak[1] - 3) <= 1
    # an integer shift without zoom moves the pixels exactly
    moved = Jitter(1.0, (4.0, -6.0)).pixels(image)
    assert np.array_equal(moved[6:, :-4], (image[:-6, 4:] * 255).astype(np.uint8))


def test_the_face_sampler_jitters_faces_remakes_their_lr_and_resumes():
    faces = _faces(3)
    sampler = FaceSampler(faces, batch=4, augment=False, seed=1, zoom=1.2, shift=3)
    state = sampler.state_dict()
    lr, hr, heatmaps = sampler.next_batch()
    originals = [face.hr for face in faces]
    for low, image, maps in zip(lr.numpy(), hr.numpy(), heatmaps.numpy(), strict=True):
        image = image.transpose(1, 2, 0)
        assert not any(np.array_equal(image, hr0) for hr0 in originals)  # jittered
        pixels = np.round(image * 255).astype(np.uint8)
        assert np.array_equal(low.transpose(1, 2, 0),
                              bicubic_lr(pixels, 8).astype(np.float32) / 255.0)
        assert maps.shape == (68, 16, 16) and maps.max() > 0.5  # points kept near the crop
    sampler.load_state_dict(state)
    assert all(torch.equal(a, b) for a, b in zip(sampler.next_batch(), (lr, hr, heatmaps),
                                                   strict=True))
    with pytest.raises(ValueError, match="zoom"):
        FaceSampler(faces, batch=4, augment=False, seed=1, zoom=0.5)


def test_a_face_recipe_refuses_what_whole_faces_cannot_do():
    with pytest.raises(ValueError, match=r"data\.landmarks"):
        parse_recipe({"model": "fsrnet-s", "scale": 8, "data": {"landmarks": True},
                      "scales": [4, 8]})
    with pytest.raises(ValueError, match=r"data\.face_zoom"):
        parse_recipe({"model": "fsrnet-s", "scale": 8, "data": {"face_zoom": 1.2}})
    with pytest.raises(ValueError, match=r"data\.face_zoom"):
        parse_recipe({"model": "fsrnet-s", "scale": 8,
                      "data": {"landmarks": True, "face_zoom": 0.9}})


@pytest.fixture()
def face_data(tmp_path, monkeypatch) -> Path:
    """A data folder with four stand-in training faces (smooth colours, 32 x 32) and their
    landmarks, registered as FaceTrain."""
    train = tmp_path / "Faces" / "train"
    train.mkdir(parents=True)
    rng = np.random.default_rng(2)
    rows = []
    for i in range(4):
        small = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
        Image.fromarray(small).resize((32, 32), Image.BICUBIC).save(train / f"face{i}.png")
        points = _face_points(32)
        rows.append({"file": f"face{i}.png",
                     **{f"{a}{k + 1}": points[k, j] for k in range(POINTS)
                        for j, a in enumerate("xy")}})
    with open(tmp_path / "Faces" / "train_landmarks.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    monkeypatch.setenv("SUPERRES_DATA", str(tmp_path))
    return train


def test_landmarks_are_read_for_each_training_face(face_data):
    landmarks = dataset_landmarks("FaceTrain")
    assert len(landmarks) == 4 and all(p.shape == (68, 2) for p in landmarks.values())
    assert np.allclose(next(iter(landmarks.values())), _face_points(32))
    with pytest.raises(ValueError, match="has no landmarks"):
        dataset_landmarks("T91")


def _face_recipe(folder: Path, model: str = "fsrnet-s", landmarks: bool = True):
    return parse_recipe({
        "model": model, "scale": 4, "seed": 3,
        "data": {"train": ["FaceTrain"], "batch": 2, "landmarks": landmarks},
        "optimizer": {"lr": 1e-3}, "schedule": {"name": "constant", "steps": 2},
        "validate_on": str(folder), "validate_every": 2, "checkpoint_every": 1,
    })


def test_fsrnet_trains_on_faces_with_landmarks_and_resumes_exactly(face_data, tmp_path):
    recipe = _face_recipe(face_data)
    whole = train(recipe, tmp_path / "whole", progress=False, threads=1)
    assert whole is not None and whole.steps == 2
    train(recipe, tmp_path / "split", max_steps=1, progress=False, threads=1)
    train(recipe, tmp_path / "split", resume=True, progress=False, threads=1)
    a, b = (get_model("fsrnet-s").build(4) for _ in range(2))
    load_weights(a, tmp_path / "whole" / "best.safetensors")
    load_weights(b, tmp_path / "split" / "best.safetensors")
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(),
                                                 b.state_dict().values(), strict=True))


def test_fsrnet_without_landmark_data_is_refused_in_one_line(face_data, tmp_path):
    recipe = parse_recipe({**_face_recipe(face_data, landmarks=False).to_dict(),
                           "data": {"train": ["FaceTrain"], "batch": 2, "patch": 8}})
    with pytest.raises(ValueError, match=r"set data\.landmarks: true"):
        train(recipe, tmp_path / "run", progress=False, threads=1)


@pytest.mark.skipif(not FACE_DATA.is_dir(),
                    reason="needs the face sets in $SUPERRES_DATA/Faces (see docs/face.md)")
@pytest.mark.parametrize("weights", SHIPPED, ids=lambda w: f"{w.model}_x{w.scale}")
def test_shipped_face_weights_reproduce_their_helen50_score_and_come_from_their_run(
        weights, one_thread):
    score = evaluate_dataset(load(weights.model, weights.scale), "FaceHelen50", progress=False)
    assert score.channel == "rgb"
    assert score.psnr == pytest.approx(weights.scores["FaceHelen50"][0], abs=1e-3)
    assert file_digest(CHECKPOINTS / weights.recipe / "best.safetensors") == weights.sha256
