"""Colour-guided depth SR: the guided filter and JBU as their papers define them, the
Middlebury release's LR reproduced, leave-one-scene-out folds that never test on a training
scene, DJF's two-branch network, exact resume of the fold trainer, and the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import superres
from superres.classic.depth import (
    bicubic_depth,
    box_mean,
    guided_filter,
    guided_filter_upsample,
    joint_bilateral_upsample,
)
from superres.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main
from superres.data import get_dataset
from superres.data.depth import (
    MIDDLEBURY_SCENES,
    depth_scenes,
    downsample_depth,
    is_depth_set,
    leave_one_out,
)
from superres.depth import evaluate_depth
from superres.metrics.depth import rmse_255
from superres.nn.blocks.guided import LearnedJointBilateral
from superres.train.depth import PatchStream, check_depth_recipe, train_depth
from superres.train.recipe import parse_recipe
from superres.weights import read_header, read_state_dict

# ------------------------------------------------------------------ classical methods


def test_guided_filter_matches_a_hand_computed_case_gray_and_colour():
    # I = p = [0, 1], r = 1: both windows hold both pixels, mean 0.5, variance 0.25.
    # Gray, eps = 0.25: a = 0.25 / 0.5 = 0.5, b = 0.5 - 0.5 * 0.5 = 0.25 -> q = [0.25, 0.75].
    image = np.array([[0.0, 1.0]])
    assert guided_filter(image, image, 1, 0.25) == pytest.approx(np.array([[0.25, 0.75]]))
    # Colour guide, three equal channels: (0.25 J + eps I) a = 0.25 (1, 1, 1) gives each
    # a_c = 0.25 / (0.75 + eps) = 0.25, so q = 0.75 I + (0.5 - 0.75 * 0.5) = [0.125, 0.875].
    colour = np.repeat(image[..., None], 3, axis=2)
    assert guided_filter(image, colour, 1, 0.25) == pytest.approx(np.array([[0.125, 0.875]]))


def test_guided_filter_keeps_a_constant_map_and_box_mean_cuts_windows_at_borders():
    rng = np.random.default_rng(0)
    guide = rng.random((12, 10, 3))
    assert guided_filter(np.full((12, 10), 0.4), guide, 2, 1e-3) == pytest.approx(0.4)
    row = np.array([[1.0, 2.0, 3.0, 10.0]])
    assert box_mean(row, 1) == pytest.approx(np.array([[1.5, 2.0, 5.0, 6.5]]))


def test_jbu_with_a_constant_guide_is_the_gaussian_weighted_mean_of_lr_neighbours():
    rng = np.random.default_rng(1)
    lr, scale, sigma = rng.random((5, 6)), 4, 1.0
    out = joint_bilateral_upsample(lr, np.full((20, 24, 3), 0.5), scale, sigma, 0.1, radius=2)
    # HR pixel (9, 14) sits at LR position ((9.5) / 4 - 0.5, (14.5) / 4 - 0.5) = (1.875, 3.125);
    # its 4 x 4 nearest LR pixels are rows 0..3 and columns 2..5.
    y, x = 9.5 / scale - 0.5, 14.5 / scale - 0.5
    rows, cols = np.arange(0, 4), np.arange(2, 6)
    weights = np.exp(-((rows[:, None] - y) ** 2 + (cols[None] - x) ** 2) / (2 * sigma**2))
    expected = (weights * lr[np.ix_(rows, cols)]).sum() / weights.sum()
    assert out[9, 14] == pytest.approx(expected)
    assert joint_bilateral_upsample(np.full((5, 6), 0.3), np.zeros((20, 24, 3)), 4) \
        == pytest.approx(0.3)


def test_jbu_keeps_a_depth_edge_where_the_guide_has_it():
    depth = np.zeros((32, 32))
    depth[:, 13:] = 1.0  # an edge between LR pixels, where bicubic must blur it
    guide = np.repeat(depth[..., None], 3, axis=2)
    lr = downsample_depth(depth, 4)
    error_jbu = rmse_255(joint_bilateral_upsample(lr, guide, 4), depth)
    assert error_jbu < 0.5 * rmse_255(bicubic_depth(lr, 4), depth)
    assert rmse_255(guided_filter_upsample(lr, guide, 4), depth) < rmse_255(
        bicubic_depth(lr, 4), depth)


def test_a_guide_of_the_wrong_size_is_a_one_line_error():
    with pytest.raises(ValueError, match=r"guide is 30x20, but x4 of a 6x5 depth map needs "
                                         r"24x20"):
        joint_bilateral_upsample(np.zeros((5, 6)), np.zeros((20, 30, 3)), 4)


def test_rmse_is_on_the_0_255_scale_over_the_whole_map():
    hr = np.zeros((4, 4))
    sr = np.zeros((4, 4))
    sr[0, 0] = 8 / 255  # one pixel 8 levels off in 16: RMSE sqrt(64 / 16) = 2
    assert rmse_255(sr, hr) == pytest.approx(2.0)


# ------------------------------------------------------------------ data


def test_leave_one_out_never_tests_on_a_training_scene():
    scenes = list(MIDDLEBURY_SCENES.values())
    folds = leave_one_out(scenes)
    assert [held_out for held_out, _ in folds] == scenes  # each scene tested once
    for held_out, trained_on in folds:
        assert held_out not in trained_on
        assert sorted([held_out, *trained_on]) == sorted(scenes)
    with pytest.raises(ValueError, match="distinct"):
        leave_one_out(["Art", "Art"])


def test_middlebury_is_a_registered_depth_set():
    spec = get_dataset("middlebury")
    assert (spec.name, spec.images, spec.role) == ("Middlebury2005", 6, "eval")
    assert "PMBANet_DSR@1c473ebb" in spec.manual
    assert is_depth_set("Middlebury2005") and not is_depth_set("Set5")


def test_the_released_lr_maps_are_remade_by_downsample_depth(require_dataset):
    require_dataset("Middlebury2005")
    _, scenes = depth_scenes("Middlebury2005", (2, 4, 8, 16))
    assert [s.name for s in scenes] == list(MIDDLEBURY_SCENES.values())
    for scene in scenes[:2]:
        for scale in (2, 4, 8):  # pixel for pixel
            assert np.array_equal(downsample_depth(scene.depth, scale), scene.lr(scale))
        differ = downsample_depth(scene.depth, 16) != scene.lr(16)
        assert differ.sum() <= 5  # x16: a few pixels one level off (docs/depth.md)


def test_bicubic_on_middlebury_x8_gives_the_documented_rmse(require_dataset):
    require_dataset("Middlebury2005")
    result = evaluate_depth("bicubic", 8, "Middlebury2005")
    assert result.images == 6
    assert result.rmse == pytest.approx(3.636, abs=1e-3)  # docs/depth.md


def _depth_folder(root: Path, scenes: int = 3, size: int = 32) -> Path:
    """A user's depth + guide folder: piecewise-constant depth whose edges the guide shows."""
    rng = np.random.default_rng(2)
    for folder in ("depth", "guide"):
        (root / folder).mkdir(parents=True)
    for i in range(scenes):
        depth = np.full((size, size), 40 + 30 * i, dtype=np.uint8)
        top, left = rng.integers(4, size // 2, 2)
        depth[top:top + size // 3, left:left + size // 3] = 200
        guide = np.repeat(depth[..., None], 3, axis=2) // 2 + rng.integers(0, 20, (size, size, 3),
                                                                          dtype=np.uint8)
        Image.fromarray(depth).save(root / "depth" / f"scene{i}.png")
        Image.fromarray(guide).save(root / "guide" / f"scene{i}.png")
    return root


def test_a_user_folder_of_depth_and_guide_pairs_is_read_by_matching_names(tmp_path):
    folder = _depth_folder(tmp_path / "mine")
    name, scenes = depth_scenes(folder)
    assert name == "mine" and [s.name for s in scenes] == ["scene0", "scene1", "scene2"]
    assert scenes[0].guide.shape == (32, 32, 3) and scenes[0].lr(4).shape == (8, 8)
    (folder / "guide" / "scene1.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"scene1\.png: no guide image"):
        depth_scenes(folder)


# ------------------------------------------------------------------ DJF


def test_djf_has_two_branches_fused_into_a_residual_of_the_bicubic_depth(one_thread):
    model = superres.build("djf", 8).eval()
    assert sum(p.numel() for p in model.parameters()) == 25_347  # docs/models/djf.md
    lr, guide = torch.rand(1, 1, 6, 5), torch.rand(1, 3, 48, 40)
    with torch.no_grad():
        for layer in model.body.fusion:  # a silent fusion leaves the bicubic depth
            if isinstance(layer, torch.nn.Conv2d):
                layer.weight.zero_()
                layer.bias.zero_()
        assert torch.allclose(model(lr, guide), model.upsample(lr), atol=1e-6)
    with pytest.raises(ValueError, match="integer multiple"):
        model(lr, torch.rand(1, 3, 40, 40))


def test_learned_jbu_starts_as_kopf_jbu_and_reads_the_scale_from_the_guide(one_thread):
    rng = np.random.default_rng(3)
    lr, guide = rng.random((5, 6)), rng.random((20, 24, 3))
    model = LearnedJointBilateral(4, sigma_depth=1e6)  # no depth-range term: plain JBU
    with torch.no_grad():
        out = model(torch.from_numpy(lr).float()[None, None],
                    torch.from_numpy(guide).float().permute(2, 0, 1)[None])
    assert out[0, 0].numpy() == pytest.approx(joint_bilateral_upsample(lr, guide, 4), abs=1e-5)
    assert superres.build("learned-jbu", 16)(torch.rand(1, 1, 3, 4)).shape == (1, 1, 48, 64)
    assert sum(p.numel() for p in superres.build("learned-jbu", 8).parameters()) == 3_962
    with pytest.raises(ValueError, match="integer multiple"):
        model(torch.rand(1, 1, 5, 6), torch.rand(1, 3, 20, 25))


def _recipe(folder: Path, **changes):
    values = {"model": "learned-jbu", "scale": 4, "scales": [4], "loss": "mse",
              "data": {"train": [str(folder)], "patch": 3, "batch": 2},
              "optimizer": {"lr": 1.0e-3}, "schedule": {"name": "cosine", "steps": 4},
              "validate_on": "leave-one-out", "validate_every": 4, "checkpoint_every": 2}
    values.update(changes)
    return parse_recipe(values)


def test_the_fold_trainer_resumes_exactly_and_writes_every_fold(tmp_path, one_thread):
    folder = _depth_folder(tmp_path / "scenes", scenes=2)
    whole = train_depth(_recipe(folder), tmp_path / "whole", progress=False)
    assert sorted(whole.rmse) == ["scene0", "scene1"]
    train_depth(_recipe(folder), tmp_path / "cut", max_steps=2, progress=False)
    assert not (tmp_path / "cut" / "scene0" / "weights.safetensors").exists()
    train_depth(_recipe(folder), tmp_path / "cut", resume=True, progress=False)
    for fold in ("scene0", "scene1", "all"):
        first = read_state_dict(tmp_path / "whole" / fold / "weights.safetensors")
        second = read_state_dict(tmp_path / "cut" / fold / "weights.safetensors")
        assert all(torch.equal(first[k], second[k]) for k in first), fold
        # no fold trains on the scene it is scored on; `all` trains on every scene
        metadata = read_header(tmp_path / "whole" / fold / "weights.safetensors")[1]
        trained_on = metadata["trained_on"].split(",")
        assert metadata["held_out"] == fold and fold not in trained_on
        assert sorted(trained_on) == sorted({"scene0", "scene1"} - {fold})
    with pytest.raises(ValueError, match=r"differs .* in loss"):
        train_depth(_recipe(folder, loss="l1"), tmp_path / "cut", resume=True, progress=False)


def test_depth_recipes_refuse_what_the_fold_trainer_does_not_do(tmp_path):
    with pytest.raises(ValueError, match="validate_on to 'leave-one-out'"):
        check_depth_recipe(_recipe(tmp_path, validate_on="Set5"))
    with pytest.raises(ValueError, match="does not implement ema"):
        check_depth_recipe(_recipe(tmp_path, ema=0.999))
    with pytest.raises(ValueError, match="takes no guide"):
        check_depth_recipe(_recipe(tmp_path, model="srcnn", scales=[4]))


def test_patches_of_depth_guide_and_hr_stay_aligned_under_augmentation(tmp_path):
    _, scenes = depth_scenes(_depth_folder(tmp_path / "s", scenes=1))
    stream = PatchStream(scenes, (2, 4), 12, 8, True, seed=0)
    for _ in range(4):
        lr, guide, hr = stream.next_batch()
        scale = 12 // lr.shape[-1]
        assert lr.shape == (8, 1, 12 // scale, 12 // scale)
        assert guide.shape == (8, 3, 12, 12) and hr.shape == (8, 1, 12, 12)
        # the synthetic guide is depth / 2 plus noise under 20 levels: aligned to the pixel
        assert ((guide[:, 0] - hr[:, 0] / 2).abs() < 21 / 255).all()
    with pytest.raises(ValueError, match="divide by every scale"):
        PatchStream(scenes, (4,), 10, 8, True, seed=0)


# ------------------------------------------------------------------ command line


def test_eval_scores_a_user_depth_folder_with_jbu_below_bicubic(tmp_path, capsys):
    folder = _depth_folder(tmp_path / "scenes")
    scores = {}
    for method in ("bicubic", "jbu"):
        assert main(["eval", "-m", method, "-s", "4", "-d", str(folder), "--json"]) == EXIT_OK
        report = json.loads(capsys.readouterr().out)
        assert (report["scale"], report["results"][0]["images"]) == (4, 3)
        scores[method] = report["results"][0]["rmse"]
    assert scores["jbu"] < scores["bicubic"]


def test_upscale_a_depth_map_with_its_guide_and_refuse_a_mismatched_guide(tmp_path, capsys):
    depth, guide = tmp_path / "depth.png", tmp_path / "rgb.png"
    Image.fromarray(np.full((8, 10), 90, np.uint8)).save(depth)
    Image.fromarray(np.zeros((32, 40, 3), np.uint8)).save(guide)
    out = tmp_path / "out.png"
    assert main(["upscale", str(depth), "--guide", str(guide), "-m", "jbu", "-s", "4",
                 "-o", str(out)]) == EXIT_OK
    assert np.asarray(Image.open(out)).shape == (32, 40)
    assert (np.asarray(Image.open(out)) == 90).all()
    capsys.readouterr()
    code = main(["upscale", str(depth), "--guide", str(guide), "-m", "jbu", "-s", "8",
                 "-o", str(tmp_path / "x8.png")])
    error = capsys.readouterr().err
    assert code == EXIT_FAILED and error.count("\n") == 1
    assert "the guide is 40x32, but x8 of the 10x8 depth map needs 80x64" in error
    assert main(["upscale", str(depth), "--guide", str(guide), "-m", "fsrcnn", "-s", "4",
                 "-o", str(tmp_path / "f.png")]) == EXIT_USAGE


def test_fold_weights_ship_with_their_sha256_and_a_corrupt_file_is_refused(tmp_path,
                                                                          monkeypatch):
    import superres.weights as weights

    monkeypatch.setattr(weights, "ZOO", tmp_path / "zoo")
    sources = {}
    for scene in ("Art", "all"):
        sources[scene] = weights.save_weights(superres.build("learned-jbu", 8),
                                              tmp_path / f"{scene}.safetensors")
    weights.add_shipped_folds("learned-jbu", sources, {"recipe": "depth_learned_jbu"})
    shipped = weights.shipped_folds("learned-jbu")
    assert sorted(shipped) == ["Art", "all"]
    assert weights.shipped_folds("djf") == {}
    shipped["Art"].write_bytes(b"not the weights")
    with pytest.raises(ValueError, match="corrupt"):
        weights.shipped_folds("learned-jbu")


def test_the_shipped_all_scenes_model_upscales_a_users_depth_map(tmp_path):
    from superres.weights import shipped_folds

    if "all" not in shipped_folds("learned-jbu"):
        pytest.skip("no learned-jbu weights are shipped in this checkout")
    _, scenes = depth_scenes(_depth_folder(tmp_path / "scenes", scenes=1, size=64))
    lr = np.round(scenes[0].lr(4) * 255).astype(np.uint8)
    Image.fromarray(lr).save(tmp_path / "depth.png")
    Image.fromarray(np.round(scenes[0].guide * 255).astype(np.uint8)).save(tmp_path / "rgb.png")
    out = tmp_path / "sr.png"
    assert main(["upscale", str(tmp_path / "depth.png"), "--guide", str(tmp_path / "rgb.png"),
                 "-s", "4", "-o", str(out)]) == EXIT_OK  # learned-jbu by default
    sr = np.asarray(Image.open(out)) / 255
    assert rmse_255(sr, scenes[0].depth) < rmse_255(bicubic_depth(lr / 255, 4), scenes[0].depth)


def test_eval_keeps_depth_and_image_sets_apart(tmp_path, capsys):
    images = tmp_path / "photos"
    images.mkdir()
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(images / "a.png")
    assert main(["eval", "-m", "jbu", "-s", "4", "-d", str(images)]) == EXIT_USAGE
    assert "depth sets" in capsys.readouterr().err
    folder = _depth_folder(tmp_path / "scenes", scenes=1)
    assert main(["eval", "-m", "fsrcnn", "-s", "4", "-d", str(folder)]) == EXIT_USAGE
    assert "guided method" in capsys.readouterr().err
