"""Sparse-coding SR (Yang et al., TIP 2010): the LR features are MATLAB's gradient filters,
the lasso solver is exact, back-projection restores LR consistency, coupled dictionary
learning lowers its objective and resumes exactly, and the shipped x3 dictionary beats
bicubic."""

import math

import numpy as np
import pytest
import torch
from PIL import Image

import superres
import superres.train.dictionary as dictionary_module
from superres.classic.lasso import lasso, soft_threshold
from superres.image.color import rgb_to_y
from superres.image.degrade import bicubic_lr
from superres.image.io import read_image
from superres.image.resize import imresize
from superres.image.sample import sample_image
from superres.inference.upscaler import Upscaler
from superres.models.sparse_coding import (
    SPARSE_CODING,
    SparseCodingSR,
    back_project,
    back_projection_kernel,
    gradient_features,
    grid_starts,
)
from superres.train.dictionary import (
    DictionarySettings,
    learn_dictionaries,
    save_dictionaries,
    update_dictionary,
)
from superres.weights import checked_path, find_weights, load_weights

pytestmark = pytest.mark.usefixtures("one_thread")


def y_psnr(sr: np.ndarray, hr: np.ndarray, shave: int) -> float:
    """PSNR of the BT.601 luma (0-255), `shave` pixels off every side."""
    def luma(image: np.ndarray) -> np.ndarray:
        return rgb_to_y(image.astype(np.float64) / 255)[..., 0] * 255

    error = (luma(sr) - luma(hr))[shave:-shave, shave:-shave]
    return 10 * math.log10(255**2 / np.mean(error**2))


# -------------------------------------------------------------------------- features, grid


def test_features_are_matlab_conv2_of_the_papers_filters():
    """conv2 flips its kernel: [-1, 0, 1] gives x(n-1) - x(n+1), -2 on a unit ramp; the
    second-order filter [1, 0, -2, 0, 1] gives 8 on x^2."""
    ramp = torch.arange(12.0).repeat(12, 1)[None, None]  # x, constant along y
    features = gradient_features(ramp)[0, :, 2:-2, 2:-2]
    assert torch.all(features[0] == -2) and torch.all(features[1] == 0)
    parabola = ramp.transpose(-1, -2) ** 2  # y^2
    features = gradient_features(parabola)[0, :, 2:-2, 2:-2]
    assert torch.all(features[3] == 8) and torch.all(features[2] == 0)


def test_features_are_zero_padded_at_the_border_as_conv2_same():
    image = torch.ones(1, 1, 6, 6)
    features = gradient_features(image)[0]
    assert features[0, 0, 0] == -1 and features[0, 0, -1] == 1  # a missing neighbour is 0
    assert features[2, 0, 0] == -1 and features[2, 0, 2] == 0  # 1 - 2 (one tap missing)


def test_patch_grid_is_the_released_codes_one_pixel_step_with_a_flush_last_patch():
    assert grid_starts(20, 1).tolist() == list(range(2, 14))  # 2 .. 20 - 5 - 2
    assert grid_starts(20, 3).tolist() == [2, 5, 8, 11, 13]
    assert grid_starts(8, 1).numel() == 0  # no 5 x 5 patch fits 2 pixels from the border


# ------------------------------------------------------------------------------- the lasso


def test_lasso_over_an_orthonormal_dictionary_is_soft_thresholding():
    generator = torch.Generator().manual_seed(0)
    basis, _ = torch.linalg.qr(torch.randn(16, 16, generator=generator))
    signals = torch.randn(40, 16, generator=generator)
    codes = lasso(basis, signals, 0.3)
    torch.testing.assert_close(codes, soft_threshold(signals @ basis, 0.3), atol=1e-5, rtol=0)


def test_lasso_meets_the_optimality_conditions_on_an_overcomplete_dictionary():
    generator = torch.Generator().manual_seed(1)
    dictionary = torch.randn(20, 80, generator=generator)
    dictionary /= dictionary.norm(dim=0)
    signals = torch.randn(300, 20, generator=generator)
    signals /= signals.norm(dim=1, keepdim=True)
    codes = lasso(dictionary, signals, 0.1)
    gradient = (signals - codes @ dictionary.T) @ dictionary  # d_j^T r
    support = codes != 0
    assert support.sum(dim=1).float().mean() > 3  # a real sparse problem, not all zeros
    torch.testing.assert_close(gradient[support], 0.1 * codes[support].sign(), atol=1e-5,
                               rtol=0)
    assert gradient[~support].abs().max() <= 0.1 * (1 + 1e-4) + 1e-6


def test_lasso_agrees_with_a_long_run_of_proximal_gradient():
    generator = torch.Generator().manual_seed(2)
    dictionary = torch.randn(30, 60, generator=generator, dtype=torch.float64)
    dictionary /= dictionary.norm(dim=0)
    signals = torch.randn(8, 30, generator=generator, dtype=torch.float64)
    signals /= signals.norm(dim=1, keepdim=True)
    step = 1 / torch.linalg.matrix_norm(dictionary, 2) ** 2
    reference = previous = torch.zeros(8, 60, dtype=torch.float64)
    for k in range(1, 5000):  # FISTA (Beck and Teboulle 2009): slow but certain
        point = reference + (k - 1) / (k + 2) * (reference - previous)
        gradient = (point @ dictionary.T - signals) @ dictionary
        previous, reference = reference, soft_threshold(point - step * gradient, 0.05 * step)
    codes = lasso(dictionary, signals, 0.05)
    assert (codes != 0).sum(dim=1).min() >= 5
    # Equal up to what the optimality slack allows (1e-4 of the penalty).
    torch.testing.assert_close(codes, reference, atol=1e-4, rtol=0)

    def objective(a: torch.Tensor) -> torch.Tensor:
        return 0.5 * (signals - a @ dictionary.T).square().sum(dim=1) + 0.05 * a.abs().sum(dim=1)

    assert (objective(codes) - objective(reference)).max() < 1e-9


def test_lasso_survives_linearly_dependent_active_atoms():
    """More active atoms than dimensions makes the feature-sign system singular; the solver
    falls back to coordinate descent and still ends at an optimum."""
    generator = torch.Generator().manual_seed(5)
    dictionary = torch.randn(12, 40, generator=generator, dtype=torch.float64)
    dictionary /= dictionary.norm(dim=0)
    signals = torch.randn(4, 12, generator=generator, dtype=torch.float64)
    codes = lasso(dictionary, signals, 0.05)
    gradient = (signals - codes @ dictionary.T) @ dictionary
    support = codes != 0
    torch.testing.assert_close(gradient[support], 0.05 * codes[support].sign(), atol=1e-6,
                               rtol=0)
    assert gradient[~support].abs().max() <= 0.05 * (1 + 1e-4)


def test_lasso_says_what_is_wrong_with_its_input():
    with pytest.raises(ValueError, match="n x m and a dictionary m x K"):
        lasso(torch.randn(5, 7), torch.randn(3, 4), 0.1)
    with pytest.raises(ValueError, match="penalty must be positive"):
        lasso(torch.randn(4, 7), torch.randn(3, 4), 0.0)


# ---------------------------------------------------------------------- back-projection


def test_back_projection_kernel_is_a_normalised_squared_gaussian():
    kernel = back_projection_kernel()[0, 0]
    assert kernel.sum().item() == pytest.approx(1.0)
    offsets = torch.arange(-2.0, 3.0)
    expected = torch.exp(-(offsets[:, None] ** 2 + offsets[None, :] ** 2))  # sigma 1/sqrt(2)
    torch.testing.assert_close(kernel, expected / expected.sum())


def test_back_projection_pulls_the_sr_image_towards_its_lr_image():
    generator = torch.Generator().manual_seed(3)
    lr = torch.rand(1, 1, 16, 16, generator=generator) * 255
    sr = imresize(lr, 3) + 20 * torch.randn(1, 1, 48, 48, generator=generator)

    def lr_error(image: torch.Tensor) -> float:
        return (imresize(image, size=(16, 16)) - lr).abs().mean().item()

    once, many = back_project(sr, lr, 1), back_project(sr, lr, 20)
    assert lr_error(once) < lr_error(sr) and lr_error(many) < 0.2 * lr_error(sr)


# -------------------------------------------------------------------- dictionary learning


@pytest.fixture(scope="module")
def tiny_training_set(tmp_path_factory) -> str:
    """Three crops of the sample chart as a folder of HR images."""
    folder = tmp_path_factory.mktemp("train")
    chart = sample_image()
    for i, box in enumerate([(0, 0, 96, 96), (96, 0, 192, 96), (48, 32, 144, 128)]):
        chart.crop(box).save(folder / f"{i}.png")
    return str(folder)


def test_coupled_dictionary_learning_lowers_its_objective_and_resumes_exactly(
    tiny_training_set, tmp_path, monkeypatch
):
    settings = DictionarySettings(scale=3, atoms=24, patches=600, iterations=3,
                                  dataset=tiny_training_set)
    whole = learn_dictionaries(settings, progress=False)
    assert whole.objective[-1] < whole.objective[0]
    joint = torch.cat([whole.high, whole.low])
    assert joint.shape == (125, 24) and joint.norm(dim=0).max() <= 1 + 1e-5

    checkpoint = tmp_path / "run.pt"
    calls = []
    code = dictionary_module._code_statistics

    def killed_in_the_second_iteration(*args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return code(*args)

    monkeypatch.setattr(dictionary_module, "_code_statistics", killed_in_the_second_iteration)
    with pytest.raises(KeyboardInterrupt):
        learn_dictionaries(settings, checkpoint=checkpoint, progress=False)
    monkeypatch.undo()
    other = DictionarySettings(**{**settings.__dict__, "penalty": 0.2})
    with pytest.raises(ValueError, match="other settings"):
        learn_dictionaries(other, checkpoint=checkpoint, progress=False)
    resumed = learn_dictionaries(settings, checkpoint=checkpoint, progress=False)
    torch.testing.assert_close(resumed.low, whole.low)
    assert resumed.objective == pytest.approx(whole.objective)


def test_dictionary_update_solves_the_norm_constrained_least_squares():
    generator = torch.Generator().manual_seed(4)
    codes = torch.randn(200, 6, generator=generator)
    truth = torch.randn(10, 6, generator=generator)
    truth = 0.5 * truth / truth.norm(dim=0)  # inside the unit ball: the constraint is idle
    data = codes @ truth.T
    start = torch.randn(10, 6, generator=generator)
    start /= start.norm(dim=0)
    learned = update_dictionary(start, data.T @ codes, codes.T @ codes, sweeps=500)
    torch.testing.assert_close(learned, truth, atol=1e-4, rtol=0)
    far = update_dictionary(start, 10 * data.T @ codes, codes.T @ codes, sweeps=500)
    torch.testing.assert_close(far.norm(dim=0), torch.ones(6))  # 5x too long: on the sphere


# -------------------------------------------------------------------------------- the model


def test_the_shipped_x3_dictionary_is_there_and_intact():
    weights = find_weights("sparse-coding", 3)
    assert weights is not None and checked_path(weights).exists()
    model = superres.load("sparse-coding", 3).model
    assert model.high.shape == (25, 1024) and model.low.shape == (100, 1024)


def sparse_coding_gain(hr: np.ndarray) -> float:
    """dB of luma PSNR that the shipped x3 model gains over bicubic on this HR crop."""
    lr = bicubic_lr(hr, 3)
    sparse = superres.load("sparse-coding", 3)
    sparse.model.progress = False
    bicubic = superres.load("bicubic", 3)
    return y_psnr(sparse.upscale(lr), hr, 3) - y_psnr(bicubic.upscale(lr), hr, 3)


def test_sparse_coding_beats_bicubic_on_the_zone_plate_of_the_sample_chart():
    assert sparse_coding_gain(np.asarray(sample_image())[30:90, 120:180]) > 0.3


def test_sparse_coding_beats_bicubic_by_dbs_on_a_crop_of_a_natural_image(require_dataset):
    butterfly = read_image(require_dataset("Set5") / "butterfly.png").pixels
    assert sparse_coding_gain(butterfly[96:156, 96:156]) > 2.0


def test_other_scales_and_missing_dictionaries_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="sparse-coding supports scales 3, not 2"):
        superres.load("sparse-coding", 2)
    empty = Upscaler(spec=SPARSE_CODING, scale=3, model=SparseCodingSR(3).eval(),
                     device=torch.device("cpu"))
    with pytest.raises(ValueError, match="x3 has no dictionary"):
        empty.upscale(np.zeros((20, 20, 3), np.uint8))
    with pytest.raises(ValueError, match="Y channel"):
        SparseCodingSR(3)(torch.zeros(1, 3, 8, 8))


def test_learned_dictionaries_save_and_load_as_the_models_weights(tiny_training_set, tmp_path):
    settings = DictionarySettings(scale=3, atoms=24, patches=300, iterations=1,
                                  dataset=tiny_training_set)
    learned = learn_dictionaries(settings, progress=False)
    path = save_dictionaries(learned, tmp_path / "mine.safetensors")
    model = SparseCodingSR(3, atoms=24, progress=False)
    load_weights(model, path)
    torch.testing.assert_close(model.low.detach(), learned.low)
    up = Upscaler(spec=SPARSE_CODING, scale=3, model=model.eval(), device=torch.device("cpu"))
    image = Image.fromarray(np.asarray(sample_image().crop((0, 0, 30, 24))))
    assert up.upscale(image).size == (90, 72)
    with pytest.raises(ValueError, match="wrong shape"):  # the registry's model has 1024
        superres.load("sparse-coding", 3, weights=path)
