"""ZSSR and the deep image prior learn at test time from the LR image alone: they beat bicubic
on a repeating pattern within seconds, are reproducible under a seed, run under no_grad and
keep to a time budget."""

import math
import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import superres
from superres.image.resize import imresize
from superres.inference.upscaler import Upscaler
from superres.models import dip, image_specific, zssr
from superres.models.dip import DIP, DeepImagePrior
from superres.models.zssr import ZSSR, ZeroShotSR, dihedral, median, undo_dihedral

pytestmark = pytest.mark.usefixtures("one_thread")


def polka_dots(size: int = 64, period: int = 16, radius: float = 5.0) -> torch.Tensor:
    """1 x 3 x size x size: antialiased coloured dots on a square lattice, a pattern that
    recurs inside the image (ZSSR's internal statistics) and has sharp edges."""
    supersample = 4
    centres = (torch.arange(size * supersample, dtype=torch.float64) + 0.5) / supersample
    y, x = torch.meshgrid(centres, centres, indexing="ij")
    inside = ((x % period - period / 2) ** 2 + (y % period - period / 2) ** 2 < radius**2)
    coverage = F.avg_pool2d(inside.double()[None, None], supersample)[0, 0]
    return torch.stack([0.2 + 0.6 * coverage, 0.7 - 0.5 * coverage, 0.3 + 0.4 * coverage])[
        None
    ].float()


def psnr(sr: torch.Tensor, hr: torch.Tensor, shave: int) -> float:
    error = (sr - hr)[..., shave:-shave, shave:-shave]
    return -10 * math.log10(error.pow(2).mean().item())


def upscaler(spec, model) -> Upscaler:
    """The model behind the same `Upscaler` (and its `torch.no_grad`) that `superres` uses."""
    return Upscaler(spec=spec, scale=model.scale, model=model.eval(), device=torch.device("cpu"))


HR = polka_dots()
LR = imresize(HR, 1 / 2).clamp(0, 1)  # 32 x 32
BICUBIC_PSNR = psnr(imresize(LR, 2).clamp(0, 1), HR, 2)


# ------------------------------------------------------------------------------------ ZSSR


@pytest.fixture(scope="module")
def zssr_200_steps() -> tuple[ZeroShotSR, torch.Tensor]:
    """ZSSR x2 on the dots after 200 steps (run once: two claims are about it)."""
    model = ZeroShotSR(2, iterations=200, progress=False)
    return model, upscaler(ZSSR, model).run(LR)


def test_zssr_beats_bicubic_by_a_db_in_200_steps_on_a_repeating_pattern(zssr_200_steps):
    model, sr = zssr_200_steps
    assert sr.shape == (1, 3, 64, 64)
    assert psnr(sr, HR, 2) > BICUBIC_PSNR + 1.0
    assert model.fits[-1].steps == 200


def test_zssr_gain_comes_from_learning_not_only_from_back_projection(zssr_200_steps):
    untrained = upscaler(ZSSR, ZeroShotSR(2, iterations=0, progress=False)).run(LR)
    assert psnr(zssr_200_steps[1], HR, 2) > psnr(untrained, HR, 2) + 0.5


def test_zssr_is_deterministic_under_a_seed():
    runs = [ZeroShotSR(2, iterations=10, seed=seed, self_ensemble=False, progress=False)(LR)
            for seed in (7, 7, 8)]
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])


def test_zssr_trains_when_called_under_no_grad():
    model = ZeroShotSR(2, iterations=5, self_ensemble=False, progress=False)
    before = [p.detach().clone() for p in model.net.parameters()]
    with torch.no_grad():
        sr = model(LR)
    assert not sr.requires_grad
    assert any(not torch.equal(a, b) for a, b in zip(before, model.net.parameters(), strict=True))


@pytest.fixture
def cpu_clock(monkeypatch):
    """The budgets counted in this thread's CPU time (one torch thread: all the work runs in
    it), so the budget logic is checked on real work without the scheduling delays of a
    busy machine, which no estimate made in advance can foresee."""
    for module in (zssr, dip, image_specific):
        monkeypatch.setattr(module, "time", SimpleNamespace(perf_counter=time.thread_time))


def test_zssr_keeps_to_its_time_budget_final_pass_included(cpu_clock):
    ZeroShotSR(2, iterations=1, progress=False)(LR)  # one-time kernel set-up, on its own
    model = ZeroShotSR(2, iterations=10**6, time_budget=1.5, progress=False)
    start = time.thread_time()
    model(LR)
    assert time.thread_time() - start < 1.5 * 1.25
    assert 0 < model.fits[-1].steps < 10**6


def test_zssr_upscales_each_image_of_a_batch_and_any_aspect_ratio():
    batch = torch.rand(2, 3, 12, 20)
    out = ZeroShotSR(3, iterations=2, progress=False)(batch)
    assert out.shape == (2, 3, 36, 60)


def test_zssr_refuses_an_image_too_small_to_learn_from():
    with pytest.raises(ValueError, match="at least 8x8"):
        ZeroShotSR(4, progress=False)(torch.rand(1, 3, 7, 30))


def test_zssr_net_is_8_conv_layers_of_64_channels():
    # 3x3 weights 3->64, 6 x 64->64, 64->3, plus 7 x 64 + 3 biases
    assert ZSSR.params(2) == 9 * (3 * 64 + 6 * 64 * 64 + 64 * 3) + 7 * 64 + 3 == 225_091


def test_median_of_eight_views_matches_numpy_and_views_invert():
    stack = torch.rand(8, 3, 5, 7)
    assert np.allclose(median(stack).numpy(), np.median(stack.numpy(), axis=0))
    image = torch.rand(1, 3, 5, 7)
    for k in range(8):
        assert torch.equal(undo_dihedral(dihedral(image, k), k), image)


# ------------------------------------------------------------------------- deep image prior


def test_dip_beats_bicubic_by_two_db_in_120_steps_on_a_repeating_pattern():
    # A 32-channel hourglass (the paper's is 128) keeps this to seconds; the method is the same.
    model = DeepImagePrior(2, iterations=120, width=32, patience=None, progress=False)
    sr = upscaler(DIP, model).run(LR)
    assert sr.shape == (1, 3, 64, 64)
    assert psnr(sr, HR, 2) > BICUBIC_PSNR + 2.0
    assert model.fits[-1].lr_psnr > 25


def test_dip_is_deterministic_under_a_seed():
    def run(seed: int) -> torch.Tensor:
        model = DeepImagePrior(4, iterations=3, width=16, seed=seed, progress=False)
        return model(LR[..., :16, :16])

    first, again, other = run(3), run(3), run(4)
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_dip_optimises_when_called_under_no_grad():
    model = DeepImagePrior(2, iterations=3, width=16, progress=False)
    with torch.no_grad():
        sr = model(LR)
    assert not sr.requires_grad
    assert model.fits[-1].steps == 3


def test_dip_keeps_to_its_time_budget_final_pass_included(cpu_clock):
    DeepImagePrior(2, iterations=1, width=16, progress=False)(LR)  # one-time kernel set-up
    model = DeepImagePrior(2, iterations=10**6, width=16, time_budget=1.5, patience=None,
                           progress=False)
    start = time.thread_time()
    model(LR)
    assert time.thread_time() - start < 1.5 * 1.25
    assert 0 < model.fits[-1].steps < 10**6


def test_dip_stops_early_when_the_lr_fit_stops_improving():
    # With a zero learning rate and no noise perturbation the fit never improves after
    # step 0, so patience 5 ends it after steps 0..5.
    model = DeepImagePrior(2, iterations=100, width=16, patience=5, learning_rate=0.0,
                           noise_regularisation=0.0, progress=False)
    model(LR)
    assert model.fits[-1].steps == 6


def test_dip_output_is_the_hr_size_for_sizes_not_multiples_of_32():
    out = DeepImagePrior(4, iterations=1, width=16, progress=False)(torch.rand(1, 3, 9, 13))
    assert out.shape == (1, 3, 36, 52)
    assert out.min() >= 0 and out.max() <= 1  # a sigmoid output


# ----------------------------------------------------------------- in the upscaler, threaded


@pytest.fixture
def two_threads():
    """This machine's default thread count, which the module's one thread would hide: with
    more than one, the upscaler splits untiled images across worker threads."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("spec", [ZSSR, DIP], ids=["zssr", "dip"])
def test_a_model_that_trains_at_test_time_learns_once_from_the_whole_image_on_all_threads(
    spec, two_threads, monkeypatch
):
    model = (ZeroShotSR(2, iterations=3, self_ensemble=False, back_projection=1, progress=False)
             if spec is ZSSR else DeepImagePrior(2, iterations=3, width=16, progress=False))
    seen = []
    train = model._train

    def spy(lr: torch.Tensor, start: float):
        seen.append((tuple(lr.shape), torch.get_num_threads()))
        return train(lr, start)

    monkeypatch.setattr(model, "_train", spy)
    sr = upscaler(spec, model).run(LR)
    assert sr.shape == (1, 3, 64, 64)
    assert seen == [((1, 3, 32, 32), 2)]  # one job, the whole image, every thread


# ------------------------------------------------------------------------------ registry


@pytest.mark.parametrize(("name", "scales"), [("zssr", (2, 3, 4)), ("dip", (2, 4, 8))])
def test_zero_shot_models_load_without_weights(name, scales):
    assert superres.build(name, scales[0]) is not None
    spec = {"zssr": ZSSR, "dip": DIP}[name]
    assert spec.scales == scales and spec.color == "rgb" and not spec.learned
    assert superres.load(name, scales[0]).name == name
