"""The GAN stage: D and G alternate, both resume exactly, and weights interpolate."""

import os
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from images import write_smooth_images
from superres.cli import EXIT_OK, EXIT_USAGE, main
from superres.train.adversarial import DISCRIMINATORS, Adversary, interpolate_weights
from superres.train.optim import learning_rate
from superres.train.recipe import load_recipe, parse_recipe
from superres.train.trainer import train

# Every test here trains: one thread each, or the two cores thrash on a busy machine.
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("hr")
    return write_smooth_images(folder, 2, (12, 14), (140, 120))


def _gan_recipe(folder: Path, **gan):
    settings = {"discriminator": "srgan", "perceptual_weight": 0.0, **gan}
    return parse_recipe({
        "model": "srvgg-s", "scale": 4, "seed": 3, "loss": "l1",
        "data": {"train": [str(folder)], "patch": 16, "batch": 2},
        "optimizer": {"lr": 1e-4}, "schedule": {"name": "constant", "steps": 100},
        "validate_on": str(folder), "validate_every": 2, "checkpoint_every": 2,
        "gan": settings,
    })


def test_a_gan_recipe_is_typed_and_checked(photos):
    recipe = _gan_recipe(photos)
    assert recipe.gan.gan_loss == "ragan" and recipe.gan.weight == 5e-3
    with pytest.raises(ValueError, match=r"gan: unknown key"):
        _gan_recipe(photos, lamda=1)


def test_gan_runs_update_both_networks_and_resume_exactly(photos, tmp_path):
    recipe = _gan_recipe(photos)
    train(recipe, tmp_path / "straight", max_steps=4, progress=False)
    train(recipe, tmp_path / "split", max_steps=2, progress=False)
    train(recipe, tmp_path / "split", resume=True, max_steps=4, progress=False)
    a = torch.load(tmp_path / "straight" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "split" / "last.pt", weights_only=True)
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    for key, value in a["adversarial"]["discriminator"].items():
        assert torch.equal(value, b["adversarial"]["discriminator"][key]), key
    log = (tmp_path / "split" / "log.csv").read_text().splitlines()
    assert log[0].endswith("d_loss") and all(line.split(",")[-1] for line in log[1:])
    assert (tmp_path / "split" / "latest.safetensors").exists()


def test_a_unet_gan_stage_resumes_exactly_with_its_spectral_norm_state(photos, tmp_path):
    recipe = parse_recipe({
        "model": "srvgg-s", "scale": 4, "seed": 3,
        "losses": [{"type": "pixel", "criterion": "l1", "weight": 1.0},
                   {"type": "adversarial", "discriminator": "unet", "width": 4,
                    "gan_loss": "vanilla", "weight": 0.1}],
        "data": {"train": [str(photos)], "patch": 4, "batch": 2},
        "optimizer": {"lr": 1e-4}, "schedule": {"name": "constant", "steps": 100},
        "validate_on": str(photos), "validate_every": 2, "checkpoint_every": 2,
    })
    train(recipe, tmp_path / "straight", max_steps=4, progress=False)
    train(recipe, tmp_path / "split", max_steps=2, progress=False)
    train(recipe, tmp_path / "split", resume=True, max_steps=4, progress=False)
    a = torch.load(tmp_path / "straight" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "split" / "last.pt", weights_only=True)
    d_a, d_b = a["adversarial"]["discriminator"], b["adversarial"]["discriminator"]
    assert any(key.endswith("_u") for key in d_a)  # the power iteration's vectors are saved
    for key in d_a:
        assert torch.equal(d_a[key], d_b[key]), key
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key


def test_only_the_unet_discriminator_takes_a_width():
    base = {"model": "srvgg-s", "scale": 4, "data": {"train": ["T91"], "patch": 8, "batch": 2}}
    with pytest.raises(ValueError, match="width applies to the unet discriminator, not 'esrgan'"):
        parse_recipe({**base, "losses": [{"type": "adversarial", "discriminator": "esrgan",
                                          "width": 32}]})
    with pytest.raises(ValueError, match="width must be a positive integer"):
        parse_recipe({**base, "losses": [{"type": "adversarial", "discriminator": "unet",
                                          "width": 0}]})


def test_perceptual_gan_stage_needs_real_vgg_features(photos, tmp_path, monkeypatch):
    monkeypatch.setenv("SUPERRES_WEIGHTS", str(tmp_path / "empty"))
    recipe = _gan_recipe(photos, perceptual_weight=1.0, perceptual_layers={"relu2_2": 1.0})
    with pytest.raises(FileNotFoundError, match="SUPERRES_WEIGHTS"):
        train(recipe, tmp_path / "run", max_steps=1, progress=False)


@pytest.mark.skipif(not os.environ.get("SUPERRES_WEIGHTS"), reason="SUPERRES_WEIGHTS is not set")
def test_gan_stage_with_the_available_vgg_layers_trains(photos, tmp_path):
    recipe = _gan_recipe(photos, perceptual_weight=1.0,
                         perceptual_layers={"relu2_2": 0.5, "relu3_1": 0.5})
    result = train(recipe, tmp_path / "run", max_steps=2, progress=False)
    assert result.steps == 2


def test_the_gan_stage_is_pixel_perceptual_and_adversarial_terms():
    esrgan, srgan = load_recipe("esrgan_x4"), load_recipe("srgan_x4")
    assert esrgan.gan.terms(esrgan.loss) == (
        {"type": "pixel", "criterion": "l1", "weight": 1e-2},
        {"type": "perceptual", "layers": {"conv5_4": 1.0}, "criterion": "l1", "weight": 1.0},
        {"type": "adversarial", "gan_loss": "ragan", "weight": 5e-3, "discriminator": "esrgan",
         "lr": 1e-4, "betas": (0.9, 0.999)},
    )
    # SRGAN has no pixel loss: a zero-weighted term is left out, as the stage always did.
    assert [t["type"] for t in srgan.gan.terms(srgan.loss)] == ["perceptual", "adversarial"]


def test_the_discriminator_rate_follows_the_generator_schedule():
    torch.manual_seed(0)
    adversary = Adversary("srgan", "lsgan", 32, lr=2e-4, betas=(0.5, 0.999), base_lr=1e-3)
    hr = torch.rand(2, 3, 32, 32)
    adversary.discriminator_step(0.5 * hr, hr, rate=5e-4)  # G at half its base rate
    assert adversary.optimizer.param_groups[0]["lr"] == pytest.approx(1e-4)
    assert adversary.last_d_loss > 0
    d_grads = [p.grad.clone() for p in adversary.discriminator.parameters()]
    sr = (0.5 * hr).requires_grad_()
    adversary.generator_loss(sr, hr).backward()
    assert sr.grad.abs().sum() > 0  # G learns through D, which G's step leaves alone
    assert all(torch.equal(g, p.grad) for g, p in zip(d_grads, adversary.discriminator.parameters(),
                                                      strict=True))


def test_network_interpolation_blends_the_two_weight_sets():
    psnr = {"w": torch.zeros(2, 2), "b": torch.ones(3)}
    gan = {"w": torch.ones(2, 2), "b": torch.full((3,), 3.0)}
    half = interpolate_weights(psnr, gan, 0.25)
    torch.testing.assert_close(half["w"], torch.full((2, 2), 0.25))
    torch.testing.assert_close(half["b"], torch.full((3,), 1.5))
    with pytest.raises(ValueError, match="differ in keys"):
        interpolate_weights(psnr, {"w": gan["w"]}, 0.5)


def test_interpolate_command(tmp_path, capsys):
    save_file({"w": torch.zeros(2)}, str(tmp_path / "psnr.safetensors"))
    save_file({"w": torch.ones(2)}, str(tmp_path / "gan.safetensors"))
    out = tmp_path / "blend.safetensors"
    args = ["interpolate", str(tmp_path / "psnr.safetensors"), str(tmp_path / "gan.safetensors")]
    assert main([*args, "--alpha", "0.8", "-o", str(out)]) == EXIT_OK
    torch.testing.assert_close(load_file(str(out))["w"], torch.full((2,), 0.8))
    assert main([*args, "--alpha", "1.5", "-o", str(out)]) == EXIT_USAGE


def test_shipped_gan_recipes_follow_their_papers():
    srgan, esrgan = load_recipe("srgan_x4"), load_recipe("esrgan_x4")
    # SRGAN: VGG54 content loss rescaled by (1/12.75)^2, 1e-3 adversarial, no pixel loss;
    # 1e5 updates at 1e-4 then 1e5 at 1e-5, from SRResNet (MSE); 96 px HR patches, batch 16.
    assert srgan.gan.perceptual_layers == {"relu5_4": 1.0}
    assert srgan.gan.perceptual_weight == pytest.approx(1 / 12.75**2, rel=0.03)
    assert (srgan.gan.gan_loss, srgan.gan.weight, srgan.gan.pixel_weight) == ("vanilla", 1e-3, 0)
    assert [learning_rate(srgan, s) for s in (0, 99_999, 100_000, 199_999)] == pytest.approx(
        [1e-4, 1e-4, 1e-5, 1e-5])
    assert srgan.schedule.steps == 200_000 and "srresnet_x4" in srgan.init
    # ESRGAN: L1 1e-2, conv5_4 before activation 1, RaGAN 5e-3; 1e-4 halved at 50k, 100k,
    # 200k, 300k; 400k updates from the PSNR-oriented RRDB; 128 px HR patches, batch 16.
    gan = esrgan.gan
    assert (gan.gan_loss, gan.weight, gan.pixel_weight, esrgan.loss) == ("ragan", 5e-3, 1e-2, "l1")
    assert gan.perceptual_layers == {"conv5_4": 1.0} and gan.perceptual_weight == 1
    rates = [learning_rate(esrgan, s) for s in (0, 50_000, 100_000, 200_000, 300_000, 399_999)]
    assert rates == pytest.approx([1e-4, 5e-5, 2.5e-5, 1.25e-5, 6.25e-6, 6.25e-6])
    assert esrgan.schedule.steps == 400_000 and "rrdb_x4" in esrgan.init
    for recipe, patch in ((srgan, 96), (esrgan, 128)):
        assert recipe.data.batch == 16 and recipe.data.patch * recipe.scale == patch
        DISCRIMINATORS[recipe.gan.discriminator](patch)  # the paper's D takes these patches


@pytest.mark.skipif(not os.environ.get("SUPERRES_WEIGHTS"), reason="SUPERRES_WEIGHTS is not set")
def test_the_cpu_demo_chains_its_psnr_stage_into_its_gan_stage(photos, tmp_path):
    psnr, gan = load_recipe("srvgg_x4_demo_psnr"), load_recipe("srvgg_x4_demo_gan")
    assert psnr.gan is None and psnr.loss == "l1"
    assert gan.init == "runs/srvgg_x4_demo_psnr/best.safetensors"  # stage 1's default folder
    assert set(gan.gan.perceptual_layers) <= {"relu1_1", "relu1_2", "relu2_1", "relu2_2",
                                              "relu3_1"}  # the truncated VGG19's layers

    def tiny(recipe, **changes):
        data = replace(recipe.data, train=(str(photos),), batch=2)
        schedule = replace(recipe.schedule, steps=2)
        return replace(recipe, data=data, schedule=schedule, validate_on=str(photos),
                       validate_every=2, checkpoint_every=2, **changes)

    train(tiny(psnr), tmp_path / "psnr", progress=False)
    init = tmp_path / "psnr" / "best.safetensors"
    train(tiny(gan, init=str(init)), tmp_path / "gan", progress=False)
    before, after = load_file(str(init)), load_file(str(tmp_path / "gan" / "latest.safetensors"))
    assert before.keys() == after.keys()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # the GAN stage moved G
    log = (tmp_path / "gan" / "log.csv").read_text().splitlines()
    assert float(log[-1].split(",")[-1]) > 0  # D's loss was logged
