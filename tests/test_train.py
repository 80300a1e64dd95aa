"""Training: typed recipes, a falling loss, atomic checkpoints and bit-exact resume."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import superres
from images import write_smooth_images
from superres.cli import EXIT_OK, EXIT_USAGE, main
from superres.files import file_digest
from superres.nn.supervision import MultiSupervised
from superres.train.optim import learning_rate
from superres.train.recipe import load_recipe, parse_recipe, shipped_recipes
from superres.train.trainer import _check_same_recipe, train
from superres.weights import WeightsNotFoundError, load_weights, save_weights


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory) -> Path:
    """Smooth random images (learnable structure) standing in for a training set."""
    folder = tmp_path_factory.mktemp("hr")
    return write_smooth_images(folder, 3, (8, 10), (60, 48))


def _recipe(folder: Path, **overrides):
    values = {
        "model": "fsrcnn-s", "scale": 2, "seed": 1, "loss": "mse",
        "data": {"train": [str(folder)], "patch": 8, "batch": 4},
        "optimizer": {"name": "adam", "lr": 3e-3},
        "schedule": {"name": "constant", "steps": 200},
        "validate_on": str(folder), "validate_every": 100, "checkpoint_every": 3,
    }
    values.update(overrides)
    return parse_recipe(values)


def test_every_shipped_recipe_parses_and_names_a_registered_model():
    recipes = shipped_recipes()
    assert recipes
    for name in recipes:
        recipe = load_recipe(name)
        superres.build(recipe.model, recipe.scale)


def test_a_misspelt_recipe_key_is_an_error_not_a_default(image_folder):
    with pytest.raises(ValueError, match=r"unknown key.*learning_rate"):
        parse_recipe({"model": "fsrcnn", "scale": 3, "optimizer": {"learning_rate": 1}})


def test_cosine_schedule_starts_at_lr_and_ends_at_min_lr(image_folder):
    recipe = _recipe(image_folder, schedule={"name": "cosine", "steps": 100, "min_lr": 1e-5})
    assert learning_rate(recipe, 0) == pytest.approx(3e-3)
    assert learning_rate(recipe, 100) == pytest.approx(1e-5)
    assert learning_rate(recipe, 50) == pytest.approx((3e-3 + 1e-5) / 2)


def test_multistep_schedule_halves_at_each_milestone(image_folder):
    recipe = _recipe(
        image_folder,
        schedule={"name": "multistep", "steps": 100, "milestones": [10, 30], "min_lr": 0},
    )
    rates = [learning_rate(recipe, step) for step in (0, 9, 10, 29, 30, 99)]
    assert rates == pytest.approx([3e-3, 3e-3, 1.5e-3, 1.5e-3, 7.5e-4, 7.5e-4])


def test_multistep_milestones_must_increase(image_folder):
    with pytest.raises(ValueError, match="milestones must be increasing"):
        _recipe(image_folder, schedule={"name": "multistep", "milestones": [30, 10]})


def test_a_short_run_lowers_the_loss(image_folder, tmp_path):
    import csv

    recipe = _recipe(image_folder, checkpoint_every=20, validate_every=1000)
    train(recipe, tmp_path / "run", max_steps=120, progress=False)
    with open(tmp_path / "run" / "log.csv") as log:
        losses = [float(r["loss"]) for r in csv.DictReader(log)]
    assert len(losses) == 6
    assert losses[-1] < 0.5 * losses[0]


def test_resume_after_a_stop_gives_the_same_weights_as_one_run(image_folder, tmp_path):
    recipe = _recipe(image_folder)
    train(recipe, tmp_path / "straight", max_steps=9, progress=False)
    train(recipe, tmp_path / "stopped", max_steps=6, progress=False)
    with pytest.raises(FileExistsError, match="--resume"):
        train(recipe, tmp_path / "stopped", max_steps=9, progress=False)
    train(recipe, tmp_path / "stopped", resume=True, max_steps=9, progress=False)
    straight = torch.load(tmp_path / "straight" / "last.pt", weights_only=True)
    resumed = torch.load(tmp_path / "stopped" / "last.pt", weights_only=True)
    assert straight["step"] == resumed["step"] == 9
    for key, value in straight["model"].items():
        assert torch.equal(value, resumed["model"][key]), key
    log = (tmp_path / "stopped" / "log.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in log] == ["step", "3", "6", "9"]


def test_validation_keeps_the_best_weights_as_safetensors(image_folder, tmp_path):
    recipe = _recipe(image_folder, validate_every=4, checkpoint_every=4)
    result = train(recipe, tmp_path / "run", max_steps=8, progress=False)
    best = load_file(str(tmp_path / "run" / "best.safetensors"))
    assert result.best_step in (4, 8) and "upsampler.weight" in best
    up = superres.load("fsrcnn-s", 2, weights=tmp_path / "run" / "best.safetensors")
    assert up.upscale(np.zeros((10, 10, 3), np.uint8)).shape == (20, 20, 3)


def test_train_command_runs_a_recipe_file(image_folder, tmp_path, capsys):
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(
        f"model: espcn\nscale: 3\ndata: {{train: ['{image_folder}'], patch: 6, batch: 2}}\n"
        f"schedule: {{name: constant, steps: 4}}\nvalidate_on: '{image_folder}'\n"
    )
    assert main(["train", str(recipe), "--out", str(tmp_path / "run"), "-q"]) == EXIT_OK
    assert "best" in capsys.readouterr().out
    assert main(["train", str(recipe), "--out", str(tmp_path / "run"), "-q"]) == EXIT_USAGE


def test_weights_of_another_architecture_are_refused(tmp_path):
    path = save_weights(superres.build("espcn", 3), tmp_path / "espcn.safetensors")
    with pytest.raises(ValueError, match="does not fit"):
        load_weights(superres.build("fsrcnn", 3), path)
    with pytest.raises(ValueError, match="wrong shape"):
        load_weights(superres.build("espcn", 2), path)


def test_a_learned_model_without_weights_says_how_to_get_them():
    with pytest.raises(WeightsNotFoundError, match="srcnn-915 x2 has no shipped weights"):
        superres.load("srcnn-915", 2)
    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        superres.load("fsrcnn", 3, weights="no/such/file.safetensors")


def test_checkpoint_writes_leave_no_temporary_files(image_folder, tmp_path):
    train(_recipe(image_folder), tmp_path / "run", max_steps=6, progress=False)
    assert not [p for p in (tmp_path / "run").iterdir() if p.name.startswith(".")]


def test_models_with_their_own_training_loss_are_trained_through_it(image_folder, tmp_path):
    calls = []

    class Recorder(MultiSupervised):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, x):
            return self.model(x)

        def training_loss(self, lr, hr, loss_fn, step):
            calls.append(step)
            return loss_fn(self.model(lr), hr)

    from superres.models import get_model

    spec = get_model("fsrcnn-s")
    original = spec.build
    object.__setattr__(spec, "build", lambda scale: Recorder(original(scale)))
    try:
        train(_recipe(image_folder, clip_grad=0.01, clip_mode="adjustable"), tmp_path / "run",
              max_steps=3, progress=False)
    finally:
        object.__setattr__(spec, "build", original)
    assert calls == [0, 1, 2]


def test_a_value_outside_the_choices_is_an_error():
    with pytest.raises(ValueError, match=r"schedule\.name is 'linear'"):
        parse_recipe({"model": "fsrcnn", "scale": 3, "schedule": {"name": "linear"}})


def _first_loss(recipe, out: Path) -> float:
    """The logged loss of one step that leaves the weights as they are."""
    import csv

    recipe = dataclasses.replace(recipe, checkpoint_every=1,
                                 optimizer=dataclasses.replace(recipe.optimizer, lr=0.0))
    train(recipe, out, max_steps=1, progress=False)
    with open(out / "log.csv") as log:
        return float(next(csv.DictReader(log))["loss"])


def test_sum_reduction_scales_the_loss_by_the_pixels_of_one_image(image_folder, tmp_path):
    loss = {(reduction, border): _first_loss(
                _recipe(image_folder, loss_reduction=reduction, loss_border=border),
                tmp_path / f"{reduction}{border}")
            for reduction in ("mean", "sum") for border in (0, 3)}
    assert loss["sum", 0] == pytest.approx(loss["mean", 0] * 16 * 16, rel=1e-5)
    assert loss["sum", 3] == pytest.approx(loss["mean", 3] * 10 * 10, rel=1e-5)  # the centre
    assert loss["mean", 3] != pytest.approx(loss["mean", 0], rel=1e-3)  # other pixels scored


def test_shipping_a_run_records_its_measured_scores_and_cost(image_folder, tmp_path,
                                                             monkeypatch):
    import superres.weights as zoo
    from superres.train.release import add_to_zoo

    monkeypatch.setattr(zoo, "ZOO", tmp_path / "zoo")
    (tmp_path / "zoo").mkdir()
    zoo.shipped_weights.cache_clear()
    recipe = _recipe(image_folder, validate_every=3, checkpoint_every=3)
    train(recipe, tmp_path / "run", max_steps=6, progress=False)
    try:
        entry = add_to_zoo(tmp_path / "run", "tiny", datasets=(str(image_folder),))
        assert entry.model == "fsrcnn-s" and entry.scale == 2 and entry.steps in (3, 6)
        assert zoo.find_weights("fsrcnn-s", 2) == entry
        up = superres.load("fsrcnn-s", 2)  # now loads the shipped file, sha256-checked
        result = superres.evaluate(up, 2, [str(image_folder)])[0]
        assert [round(result.psnr, 4), round(result.ssim, 5)] == entry.scores[image_folder.name]
        assert entry.init == ""
        # A fine-tune records where it started, with that file's digest at shipping time.
        start = tmp_path / "run" / "best.safetensors"
        tuned = _recipe(image_folder, validate_every=3, checkpoint_every=3, init=str(start))
        train(tuned, tmp_path / "tuned", max_steps=3, progress=False)
        entry = add_to_zoo(tmp_path / "tuned", "tiny", datasets=(str(image_folder),))
        assert entry.init == f"{start} (sha256 {file_digest(start)})"
        assert zoo.find_weights("fsrcnn-s", 2) == entry  # replaced, not added
        (tmp_path / "zoo" / entry.file).write_bytes(b"tampered")
        with pytest.raises(ValueError, match="corrupt"):
            superres.load("fsrcnn-s", 2)
    finally:
        zoo.shipped_weights.cache_clear()


def test_resuming_with_another_recipe_is_refused(image_folder, tmp_path):
    train(_recipe(image_folder), tmp_path / "run", max_steps=3, progress=False)
    with pytest.raises(ValueError, match=r"differs .* in loss"):
        train(_recipe(image_folder, loss="l1"), tmp_path / "run", resume=True, max_steps=6,
              progress=False)


def test_every_run_in_checkpoints_resumes_with_its_shipped_recipe():
    runs = sorted((Path(__file__).resolve().parent.parent / "checkpoints").glob("*/recipe.yaml"))
    if not runs:
        pytest.skip("no training runs in checkpoints/")
    for recorded in runs:
        _check_same_recipe(load_recipe(recorded.parent.name), recorded)


def test_a_recipe_written_before_the_multi_scale_options_still_resumes(image_folder, tmp_path):
    import yaml

    recipe = _recipe(image_folder)
    old = recipe.to_dict()
    del old["scales"], old["data"]["scale_augment"]
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(old, sort_keys=False))
    _check_same_recipe(recipe, tmp_path / "recipe.yaml")
    with pytest.raises(ValueError, match=r"differs .* in scales"):
        _check_same_recipe(_recipe(image_folder, scales=[2, 3]), tmp_path / "recipe.yaml")


def test_the_short_cpu_recipes_are_listed_after_the_full_ones():
    names = list(shipped_recipes())
    short = [i for i, name in enumerate(names) if name.endswith("_cpu")]
    assert short and min(short) > max(i for i, n in enumerate(names) if not n.endswith("_cpu"))


def test_a_missing_init_file_is_named_before_anything_is_written(image_folder, tmp_path):
    recipe = _recipe(image_folder, init="checkpoints/no_such_run/best.safetensors")
    with pytest.raises(FileNotFoundError, match=r"no_such_run.*from the repository root"):
        train(recipe, tmp_path / "run", max_steps=1, progress=False)
    assert not (tmp_path / "run").exists()


def test_loss_border_scores_only_the_centre_of_each_patch():
    from superres.train.trainer import _centre

    out, hr = _centre(3, torch.arange(512.0).reshape(2, 1, 16, 16), torch.ones(2, 1, 16, 16))
    assert out.shape == hr.shape == (2, 1, 10, 10)
    assert out[0, 0, 0, 0] == 3 * 16 + 3


def test_loss_border_must_leave_pixels_and_suit_the_model(image_folder, tmp_path):
    with pytest.raises(ValueError, match="loss_border 8 must leave pixels of the 16-pixel"):
        _recipe(image_folder, loss_border=8)
    with pytest.raises(ValueError, match="lapsrn scores its outputs in its own training loss"):
        train(_recipe(image_folder, model="lapsrn", scale=4, loss_border=2), tmp_path / "run",
              max_steps=1, progress=False)
    assert not (tmp_path / "run").exists()
