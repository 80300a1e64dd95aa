"""The temporal model and its measurement: clips synthesised from stills move as they say,
alignment undoes a known shift, a video model sees 2r + 1 frames with the edges replicated,
the video recipe resumes exactly, and Vid4-style sequences are scored frame by frame."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

import superres
from images import write_smooth_images
from superres.data import dataset_sequences, get_dataset, is_video_set
from superres.evaluation import evaluate_dataset
from superres.inference.temporal import TemporalWindows, temporal_windows, upscale_window
from superres.inference.upscaler import Upscaler
from superres.metrics.protocol import score
from superres.metrics.temporal import WarpingError, estimate_flow
from superres.models import get_model
from superres.nn.alignment import CoarseToFineFlow, flow_smoothness, flow_warp
from superres.train.clips import ClipSampler, MotionRange, Trajectory, synthesise_clip
from superres.train.recipe import load_recipe, parse_recipe
from superres.train.trainer import train
from superres.weights import load_weights, shipped_weights

pytestmark = pytest.mark.usefixtures("one_thread")


def _texture(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth random RGB texture (uint8): interpolation is accurate on it."""
    rng = np.random.default_rng(seed)
    coarse = torch.from_numpy(rng.uniform(0, 255, (1, 3, height // 8 + 2, width // 8 + 2)))
    smooth = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bicubic",
                                             align_corners=False)
    return smooth[0].clamp(0, 255).round().byte().permute(1, 2, 0).numpy()


# ----------------------------------------------------------------------------- clips


def test_a_translation_of_d_pixels_moves_the_content_by_d():
    image = _texture(120, 130)
    trajectory = Trajectory(velocity=(3.0, -2.0), acceleration=(1.0, 0.0))
    frames = synthesise_clip(image, (60, 65), 32, 2, trajectory)
    assert frames.shape == (5, 32, 32, 3)
    for k in range(-2, 3):
        dx, dy = trajectory.shift(k)  # 3k + k^2 / 2, -2k: whole pixels for even k
        if dx != int(dx):
            continue
        top, left = 60 - 16 - int(dy), 65 - 16 - int(dx)
        assert np.array_equal(frames[k + 2], image[top : top + 32, left : left + 32]), k


def test_a_sub_pixel_translation_moves_the_content_by_that_fraction():
    image = _texture(120, 130).astype(float)
    frames = synthesise_clip(image.astype(np.uint8), (60, 65), 48, 1,
                             Trajectory(velocity=(0.5, 0.0)))
    # moved half a pixel right: frame +1 at column c shows the image at c - 0.5, between
    # columns c - 1 and c (the texture is smooth, so their mean is close to it)
    rows, cols = slice(60 - 24 + 8, 60 + 24 - 8), slice(65 - 24 + 8, 65 + 24 - 8)
    between = (image[rows, cols.start - 1 : cols.stop - 1] + image[rows, cols]) / 2
    moved = frames[2, 8:-8, 8:-8].astype(float)
    assert np.abs(moved - between).mean() < 1.5  # rounding, and cubic against linear
    assert np.abs(moved - image[rows, cols]).mean() > 4 * np.abs(moved - between).mean()


def test_a_rotation_turns_the_frame_about_its_centre():
    image = _texture(160, 160)
    frames = synthesise_clip(image, (80, 80), 64, 1, Trajectory(rotation=90.0))
    # 90 degrees: frame +1 is frame 0 turned by a quarter (up to the sign convention)
    turned = [np.rot90(frames[2], k) for k in (1, 3)]
    assert min(np.abs(t.astype(int) - frames[1].astype(int)).mean() for t in turned) < 1.0


def test_clips_are_the_same_under_the_seed_and_differ_across_seeds():
    stills = [_texture(150, 160, seed) for seed in range(3)]

    def batch(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        return ClipSampler(stills, 2, 8, 3, 3, seed).next_batch()

    (lr1, hr1), (lr2, hr2), (lr3, _) = batch(5), batch(5), batch(6)
    assert lr1.shape == (3, 3, 8, 8) and hr1.shape == (3, 1, 16, 16)
    assert torch.equal(lr1, lr2) and torch.equal(hr1, hr2)
    assert not torch.equal(lr1, lr3)


def test_a_sampler_restored_from_its_state_draws_the_same_clips():
    stills = [_texture(150, 160)]
    sampler = ClipSampler(stills, 2, 8, 2, 3, 0)
    sampler.next_batch()
    state = sampler.state_dict()
    after = sampler.next_batch()
    other = ClipSampler(stills, 2, 8, 2, 3, 99)
    other.load_state_dict(state)
    assert all(torch.equal(a, b) for a, b in zip(after, other.next_batch(), strict=True))


def test_the_centre_frame_target_is_the_still_itself_and_its_lr_the_bicubic_lr():
    from superres.image.degrade import bicubic_lr
    from superres.train.clips import LR_MARGIN, _luma

    still = _texture(150, 160)
    sampler = ClipSampler([still], 2, 8, 1, 3, 0, augment=False,
                          motion=MotionRange(0.0, 0.0, 0.0, 0.0))
    lr, hr = sampler.next_batch()
    # without motion every frame is the centre one
    assert torch.equal(lr[0, 0], lr[0, 1]) and torch.equal(lr[0, 1], lr[0, 2])
    side = sampler.side
    # find the crop: the HR target occurs in the still at a whole-pixel position
    target = hr[0, 0].numpy()
    luma = _luma(still)[..., 0]
    hits = [(top, left) for top in range(150 - side + 1) for left in range(160 - side + 1)
            if np.array_equal(luma[top + 2 * LR_MARGIN : top + 2 * LR_MARGIN + 16,
                                   left + 2 * LR_MARGIN : left + 2 * LR_MARGIN + 16], target)]
    assert hits
    top, left = hits[0]
    window = bicubic_lr(still[top : top + side, left : left + side], 2)
    expected = _luma(window)[LR_MARGIN : LR_MARGIN + 8, LR_MARGIN : LR_MARGIN + 8, 0]
    assert np.array_equal(lr[0, 1].numpy(), expected)


def test_stills_too_small_for_the_motion_are_refused_in_one_line():
    with pytest.raises(ValueError, match="no training image is larger than"):
        ClipSampler([_texture(40, 40)], 4, 8, 1, 3, 0)


# ----------------------------------------------------------------------------- alignment


def test_warping_by_a_shift_and_back_recovers_the_frame_away_from_the_borders():
    frame = torch.from_numpy(_texture(64, 72)[..., 0] / 255).float()[None, None]
    for dx, dy in ((3.0, -2.0), (1.5, 0.5)):
        flow = torch.tensor([dx, dy]).view(1, 2, 1, 1).expand(1, 2, 64, 72)
        moved = flow_warp(frame, flow)
        if dx == int(dx):  # a whole-pixel shift is exact: frame sampled at p + d
            assert torch.allclose(moved[..., 8:-8, 8:-8],
                                  frame[..., 8 + int(dy) : 64 - 8 + int(dy),
                                        8 + int(dx) : 72 - 8 + int(dx)], atol=1e-6)
        back = flow_warp(moved, -flow)
        error = (back - frame)[..., 8:-8, 8:-8].abs()
        if dx == int(dx):
            assert error.max() < 1e-5
        else:  # two bilinear resamplings blur a little, far less than the shift changes
            shifted = (moved - frame)[..., 8:-8, 8:-8].abs().mean()
            assert error.mean() < 0.01 and error.mean() < shifted / 4, (dx, dy)


def test_a_flow_of_the_wrong_size_is_a_one_line_error():
    with pytest.raises(ValueError, match="flow must be N x 2 x 8 x 8"):
        flow_warp(torch.zeros(1, 1, 8, 8), torch.zeros(1, 2, 4, 4))


def test_the_flow_network_returns_a_flow_of_the_frame_size_and_asks_for_multiples_of_4():
    network = CoarseToFineFlow()
    frames = torch.rand(2, 1, 16, 20), torch.rand(2, 1, 16, 20)
    assert network(*frames).shape == (2, 2, 16, 20)
    with pytest.raises(ValueError, match="multiple of 4"):
        network(torch.rand(1, 1, 18, 20), torch.rand(1, 1, 18, 20))


def test_a_constant_flow_costs_the_huber_floor_and_a_rough_one_more():
    flat = torch.zeros(1, 2, 8, 8)
    assert flow_smoothness(flat).item() == pytest.approx(0.1)  # sqrt(0.01)
    assert flow_smoothness(torch.randn(1, 2, 8, 8)).item() > 1.0


def test_the_ground_truth_flow_estimator_finds_a_known_shift():
    frame = torch.from_numpy(_texture(96, 96)[..., 1] / 255).float()[None, None]
    reference, moving = frame[..., 8:-8, 8:-8], frame[..., 10:-6, 5:-11]
    flow = estimate_flow(reference, moving)  # moving(p + (3, -2)) = reference(p)
    centre = flow[..., 16:-16, 16:-16].mean(dim=(2, 3))[0]
    assert torch.allclose(centre, torch.tensor([3.0, -2.0]), atol=0.2)


# ----------------------------------------------------------------------------- the model


def test_vespcn_is_registered_as_a_three_frame_model_of_229_056_parameters_at_x4():
    spec = get_model("vespcn")
    assert (spec.frames, spec.radius, spec.color) == (3, 1, "y")
    assert spec.params(4) == 229_056
    assert get_model("fsrcnn").radius == 0


def test_vespcn_5_sees_two_neighbours_a_side_and_shares_all_but_its_first_layer_with_vespcn():
    spec = get_model("vespcn-5")
    assert (spec.frames, spec.radius, spec.color) == (5, 2, "y")
    assert spec.params(4) == 229_056 + 2 * 5 * 5 * 64  # the first 5x5 layer reads 2 more frames
    torch.manual_seed(0)
    model = superres.build("vespcn-5", 2)
    sr, warped, flows = model._run(torch.rand(1, 5, 8, 12))
    assert sr.shape == (1, 1, 16, 24) and len(warped) == len(flows) == 4
    three = superres.build("vespcn", 2).state_dict()
    differ = {k for k, v in model.state_dict().items() if v.shape != three[k].shape}
    assert differ == {"body.0.weight"}  # so video_x4_5f starts from video_x4's other layers


@pytest.mark.parametrize(("deep", "shallow"), [("vespcn-deep", "vespcn"),
                                                ("vespcn-5-deep", "vespcn-5")])
def test_the_deep_variant_started_from_the_shallow_weights_outputs_what_they_do(
        deep, shallow, tmp_path):
    torch.manual_seed(0)
    small = superres.build(shallow, 4).eval()
    with torch.no_grad():  # trained-looking weights: nothing left at its initial value
        for p in small.parameters():
            p.add_(0.01 * torch.randn_like(p))
    big = superres.build(deep, 4).eval()
    save_file(small.state_dict(), tmp_path / "small.safetensors")
    skipped = load_weights(big, tmp_path / "small.safetensors", strict=False)
    assert skipped and all(k.startswith("refine.") for k in skipped)
    assert get_model(deep).params(4) == get_model(shallow).params(4) + 8 * 2 * (32 * 32 * 9 + 32)
    frames = torch.rand(1, get_model(deep).frames, 10, 14)
    with torch.no_grad():
        assert torch.equal(big(frames), small(frames))
    # the blocks are live: once their zero convolution moves, so does the output
    with torch.no_grad():
        big.refine[0].body[-1].weight.add_(0.1)
        assert not torch.allclose(big(frames), small(frames))


def test_one_frame_is_upscaled_as_a_window_of_that_frame_repeated():
    torch.manual_seed(0)
    model = superres.build("vespcn", 2).eval()
    frame = torch.rand(1, 1, 12, 16)
    with torch.no_grad():
        assert torch.allclose(model(frame), model(frame.expand(-1, 3, -1, -1)))
        assert model(torch.rand(1, 3, 13, 15)).shape == (1, 1, 26, 30)  # any size
    with pytest.raises(ValueError, match="N x 3 x H x W"):
        model(torch.rand(1, 2, 8, 8))


def _vespcn_batch():
    """A VESPCN x2 with seeded weights and a random 3-frame batch."""
    torch.manual_seed(0)
    return superres.build("vespcn", 2), torch.rand(2, 3, 8, 8), torch.rand(2, 1, 16, 16)


def test_vespcn_training_loss_adds_the_motion_compensation_terms():
    model, lr, hr = _vespcn_batch()
    mse = torch.nn.functional.mse_loss
    total = model.training_loss(lr, hr, mse, 0)
    assert total.item() > mse(model(lr), hr).item()
    total.backward()
    assert model.motion.coarse[0].weight.grad.abs().sum() > 0  # the flow net learns


def test_the_motion_weight_of_a_recipe_scales_the_warped_frames_term_exactly():
    model, lr, hr = _vespcn_batch()
    mse = torch.nn.functional.mse_loss
    full = model.training_loss(lr, hr, mse, 0)
    warp_error = sum(mse(frame, lr[:, 1:2]) for frame in model._run(lr)[1])
    model.set_loss_weights({"motion": 0.01})
    assert model.loss_weights == {"motion": 0.01, "smoothness": 0.01}
    assert torch.allclose(full - model.training_loss(lr, hr, mse, 0), 0.99 * warp_error)
    assert superres.build("vespcn", 2).loss_weights["motion"] == 1.0  # the class keeps its own
    with pytest.raises(ValueError, match=r"unknown term\(s\) beta for VESPCN; known: motion, "):
        model.set_loss_weights({"beta": 1.0})


def test_model_loss_is_refused_for_a_model_without_loss_terms_of_its_own(tmp_path):
    stills = write_smooth_images(tmp_path, 1, (8, 10), (40, 40))
    recipe = parse_recipe({"model": "fsrcnn", "scale": 2, "model_loss": {"motion": 1.0},
                           "data": {"train": [str(stills)], "patch": 8, "batch": 1},
                           "schedule": {"steps": 1}})
    with pytest.raises(ValueError, match="model_loss: fsrcnn has no loss terms of its own"):
        train(recipe, tmp_path / "run", progress=False)


# ----------------------------------------------------------------------------- windows


def test_the_window_rule_replicates_the_edge_frames():
    assert list(temporal_windows(range(5), 1)) == [
        (0, 0, 1), (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 4)]
    assert list(temporal_windows(range(2), 2)) == [(0, 0, 0, 1, 1), (0, 0, 1, 1, 1)]
    assert list(temporal_windows("ab", 0)) == [("a",), ("b",)]
    assert list(temporal_windows([], 1)) == []


def test_windows_hold_at_most_2r_plus_1_frames_and_come_out_r_frames_late():
    windows: TemporalWindows[int] = TemporalWindows(2)
    out = [windows.push(i) for i in range(8)]
    assert [len(w) for w in out] == [0, 0, 1, 1, 1, 1, 1, 1]
    assert out[2] == [(0, 0, 0, 1, 2)]
    assert len(windows.buffer) == 5
    assert windows.finish() == [(4, 5, 6, 7, 7), (5, 6, 7, 7, 7)]


def test_a_window_of_one_frame_repeated_upscales_as_the_image_path_does():
    torch.manual_seed(0)
    spec = get_model("vespcn")
    upscaler = Upscaler(spec, 2, superres.build("vespcn", 2).eval(), torch.device("cpu"))
    frame = _texture(20, 24)
    windowed = upscale_window(upscaler, [frame] * 3)
    assert windowed.shape == (40, 48, 3) and windowed.dtype == np.uint8
    assert np.abs(windowed.astype(int) - upscaler.upscale(frame).astype(int)).max() <= 1
    with pytest.raises(ValueError, match="window of 3 frames, not 2"):
        upscale_window(upscaler, [frame] * 2)


# ----------------------------------------------------------------------------- evaluation


def _sequences(root: Path, frames: int = 3) -> Path:
    """Two sequences of a texture panning 2 pixels a frame (as Vid4/<sequence>/ holds)."""
    for name, seed in (("pan", 0), ("still", 1)):
        folder = root / name
        folder.mkdir(parents=True)
        texture = _texture(40, 48 + 2 * frames, seed)
        for i in range(frames):
            step = 2 * i if name == "pan" else 0
            Image.fromarray(texture[:, step : step + 48]).save(folder / f"{i:08d}.png")
    return root


def test_vid4_is_a_registered_video_set_and_a_folder_of_sequences_is_one_too(tmp_path):
    assert get_dataset("Vid4").video and is_video_set("Vid4")
    assert not is_video_set("Set5")
    root = _sequences(tmp_path / "clips")
    assert is_video_set(root)
    name, sequences = dataset_sequences(root)
    assert name == "clips" and {k: len(v) for k, v in sequences.items()} == {"pan": 3, "still": 3}


def test_a_video_set_is_scored_over_all_frames_per_sequence_then_over_sequences(tmp_path):
    root = _sequences(tmp_path / "clips")
    upscaler = superres.load("bicubic", 2)
    result = evaluate_dataset(upscaler, str(root), progress=False)
    assert result.images == 6 and [s.image for s in result.per_image] == ["pan", "still"]
    # every frame of a sequence, no border shaved, mean per sequence then over sequences
    pan = []
    for path in sorted((root / "pan").iterdir()):
        from superres.image.degrade import bicubic_lr

        hr = np.asarray(Image.open(path))
        pan.append(score(upscaler.upscale(bicubic_lr(hr, 2)), hr, 2, border=0).psnr)
    assert result.per_image[0].psnr == pytest.approx(np.mean(pan))
    assert result.psnr == pytest.approx(np.mean([s.psnr for s in result.per_image]))
    assert result.extra["warp_error"] >= 0
    assert "warp_error" in result.to_json()


def test_a_video_model_is_scored_on_its_windows(tmp_path):
    root = _sequences(tmp_path / "clips")
    torch.manual_seed(0)
    upscaler = Upscaler(get_model("vespcn"), 2, superres.build("vespcn", 2).eval(),
                        torch.device("cpu"))
    result = evaluate_dataset(upscaler, str(root), progress=False, temporal=False)
    assert result.images == 6 and "warp_error" not in result.extra


def test_flicker_raises_the_warping_error_and_a_steady_video_scores_near_zero():
    texture = _texture(48, 80)
    frames = [texture[:, 2 * i : 2 * i + 64] for i in range(4)]
    steady, flicker = WarpingError(), WarpingError()
    for i, frame in enumerate(frames):
        steady.add(frame, frame)
        bright = np.clip(frame.astype(int) + (12 if i % 2 else 0), 0, 255).astype(np.uint8)
        flicker.add(bright, frame)
    assert steady.value < 0.5 < flicker.value


# ----------------------------------------------------------------------------- recipe


def test_the_video_recipe_trains_vespcn_on_clips_and_resumes_exactly(tmp_path):
    recipe = load_recipe("video_x4")
    assert recipe.model == "vespcn" and recipe.scale == 4 and recipe.validate_on == "Vid4"
    assert recipe.model_loss == {"motion": 0.01}  # the beta video_x4 was trained with
    (tmp_path / "stills").mkdir()
    stills = write_smooth_images(tmp_path / "stills", 2, (8, 10), (90, 96))
    clips = _sequences(tmp_path / "clips", frames=2)
    tiny = parse_recipe({**recipe.to_dict(), "scale": 2,
                         "data": {**recipe.to_dict()["data"], "train": [str(stills)],
                                  "patch": 8, "batch": 2},
                         "schedule": {"name": "cosine", "steps": 6, "min_lr": 1.0e-5},
                         "validate_on": str(clips), "validate_every": 3,
                         "checkpoint_every": 2})
    train(tiny, tmp_path / "straight", max_steps=4, progress=False)
    train(tiny, tmp_path / "stopped", max_steps=2, progress=False)
    train(tiny, tmp_path / "stopped", resume=True, max_steps=4, progress=False)
    straight = torch.load(tmp_path / "straight" / "last.pt", weights_only=True)
    resumed = torch.load(tmp_path / "stopped" / "last.pt", weights_only=True)
    assert straight["step"] == resumed["step"] == 4
    for key, value in straight["model"].items():
        assert torch.equal(value, resumed["model"][key]), key


def test_a_video_model_upscales_a_video_file_keeping_its_frames_and_rate(tmp_path):
    av = pytest.importorskip("av")
    from superres.video import upscale_video

    source = tmp_path / "clip.mp4"
    with av.open(str(source), "w") as writer:
        stream = writer.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 32, 24, "yuv420p"
        for i in range(4):
            frame = av.VideoFrame.from_ndarray(_texture(24, 40)[:, 2 * i : 2 * i + 32].copy(),
                                               format="rgb24")
            writer.mux(stream.encode(frame))
        writer.mux(stream.encode(None))
    torch.manual_seed(0)
    upscaler = Upscaler(get_model("vespcn"), 2, superres.build("vespcn", 2).eval(),
                        torch.device("cpu"))
    result = upscale_video(upscaler, source, tmp_path / "out.mp4", progress=False)
    with av.open(str(result.path)) as reader:
        video = reader.streams.video[0]
        decoded = sum(1 for _ in reader.decode(video))
        assert (decoded, video.codec_context.width, video.average_rate) == (4, 64, 25)


def test_a_video_set_is_verified_frame_by_frame(tmp_path):
    from superres.data import verify_dataset

    _sequences(tmp_path / "Vid4", frames=2)
    report = verify_dataset("Vid4", root=tmp_path)
    assert not report.ok and "expected 171 images, found 4" in " ".join(report.notes)


def test_superres_models_says_how_many_frames_a_model_sees():
    from superres.api import model_row

    assert model_row(get_model("vespcn"))["frames"] == 3
    assert model_row(get_model("fsrcnn"))["frames"] == 1


def test_the_shipped_temporal_model_reproduces_its_vid4_score_and_beats_fsrcnn(require_dataset):
    """The issue's bar, re-measured: the shipped VESPCN scores on Vid4 x4 what the zoo
    records, at least 0.3 dB above frame-wise FSRCNN (the shipped x4) in the same run."""
    require_dataset("Vid4")
    shipped = next(w for w in shipped_weights() if w.model == "vespcn-deep")
    # PSNR/SSIM only: the warping error's flow of the ground truth would double the time
    score = evaluate_dataset(superres.load("vespcn-deep", 4), "Vid4", progress=False,
                             temporal=False)
    assert score.psnr == pytest.approx(shipped.scores["Vid4"][0], abs=1e-3)
    assert score.ssim == pytest.approx(shipped.scores["Vid4"][1], abs=1e-4)
    fsrcnn = evaluate_dataset(superres.load("fsrcnn", 4), "Vid4", progress=False,
                              temporal=False)
    assert score.psnr >= fsrcnn.psnr + 0.3
