"""Models composed in recipes: a description equal in structure to a named model has its
parameter count; every framework x upsampler x body builds and upscales; a composed recipe
trains, its weights load and upscale, it exports to ONNX, `superres models --describe`
counts it, and a bad description is a one-line error naming what is wrong."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import superres
from images import write_smooth_images
from superres.cli import EXIT_OK, EXIT_USAGE, main
from superres.models import get_model
from superres.models.composed import UPSAMPLERS, parse
from superres.train.recipe import parse_recipe
from superres.train.trainer import train

pytestmark = pytest.mark.usefixtures("one_thread")

FSRCNN = {  # d=56, s=12, m=4: 5x5 head, 1x1 shrink, 4 3x3 maps, 1x1 expand, 9x9 deconv
    "name": "fsrcnn-twin", "framework": "post", "color": "y", "activation": "prelu",
    "head": {"channels": 56, "kernel": 5}, "body": {"type": "plain", "blocks": 4, "channels": 12},
    "upsampler": {"type": "transposed", "kernel": 9}, "tail": None,
}
EDSR_BASELINE = {
    "framework": "post", "color": "rgb", "head": {"channels": 64, "activation": "none"},
    "body": {"type": "residual", "blocks": 16, "channels": 64, "res_scale": 1.0},
    "upsampler": {"type": "subpixel", "kernel": 3}, "tail": {"kernel": 3},
}
TWINS = {
    ("fsrcnn", 3): FSRCNN,
    ("edsr-baseline", 2): EDSR_BASELINE,
    ("vdsr", 2): {"framework": "pre", "color": "y", "head": {"channels": 64},
                  "body": {"type": "plain", "blocks": 18}, "global_residual": True},
    ("lapsrn", 4): {"framework": "progressive", "color": "y", "activation": "leaky",
                    "head": {"channels": 64}, "body": {"type": "plain", "blocks": 10},
                    "upsampler": {"type": "transposed", "kernel": 3}},
    ("rdn", 2): {**EDSR_BASELINE, "body": {"type": "residual-dense", "blocks": 16, "layers": 8,
                                           "growth": 64}},
    ("rcan", 2): {**EDSR_BASELINE, "body": {"type": "attention", "groups": 10, "blocks": 20}},
}


@pytest.mark.parametrize(("name", "scale"), list(TWINS))
def test_a_structural_twin_has_the_named_models_parameter_count(name, scale):
    assert get_model(TWINS[name, scale]).params(scale) == get_model(name).params(scale)


TINY_BODIES = {  # every body type at a few channels
    "plain": {"blocks": 2},
    "residual": {"blocks": 1, "res_scale": 0.5},
    "recursive": {"blocks": 1, "recursions": 2},
    "dense": {"blocks": 2, "layers": 2, "growth": 4},
    "residual-dense": {"blocks": 2, "layers": 2, "growth": 4},
    "attention": {"groups": 1, "blocks": 1, "reduction": 4},
    "rrdb": {"blocks": 1, "growth": 4},
}
COMBINATIONS = [
    (framework, upsampler, body)
    for framework, upsamplers in UPSAMPLERS.items()
    for upsampler in upsamplers
    for body in TINY_BODIES
]


def _tiny(framework: str, upsampler: str, body: str, color: str = "rgb") -> dict:
    upsampler_values = {"type": upsampler}
    if upsampler == "back-projection":
        upsampler_values["stages"] = 2
    elif upsampler == "transposed":
        upsampler_values["kernel"] = 3
    return {"framework": framework, "color": color, "head": {"channels": 8},
            "body": {"type": body, **TINY_BODIES[body]}, "upsampler": upsampler_values}


@pytest.mark.parametrize(("framework", "upsampler", "body"), COMBINATIONS)
def test_every_combination_builds_and_upscales_by_2_and_4(framework, upsampler, body):
    spec = get_model(_tiny(framework, upsampler, body))
    assert spec.framework.startswith(framework[:4]) and spec.learned
    for scale in (2, 4):
        spec.check_scale(scale)
        with torch.no_grad():
            out = spec.build(scale).eval()(torch.rand(1, 3, 7, 6))
        assert out.shape == (1, 3, 7 * scale, 6 * scale)


@pytest.mark.parametrize("upsampler", ["interp-conv", "transposed", "subpixel"])
def test_a_post_upsampler_can_make_the_image_at_x3_from_a_narrower_body(upsampler):
    description = {**_tiny("post", upsampler, "plain", color="y"), "tail": None}
    description["body"]["channels"] = 4  # 1x1 shrinking and expanding layers around it
    with torch.no_grad():
        out = get_model(description).build(3)(torch.rand(2, 1, 5, 6))
    assert out.shape == (2, 1, 15, 18)


def test_scales_follow_the_upsampler():
    assert get_model(_tiny("post", "subpixel", "plain")).scales == (2, 3, 4, 8)
    for framework, upsampler in [("post", "nearest-conv"), ("progressive", "subpixel"),
                                 ("iterative", "back-projection")]:
        spec = get_model(_tiny(framework, upsampler, "plain"))
        with pytest.raises(ValueError, match="supports scales 2, 4, 8, not 3"):
            spec.check_scale(3)


def test_shared_levels_serve_every_scale_with_the_same_weights():
    spec = get_model({**_tiny("progressive", "subpixel", "recursive"), "share_levels": True})
    assert spec.params(2) == spec.params(8)


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("hr")
    return write_smooth_images(folder, 2, (8, 10), (40, 32))


@pytest.mark.parametrize("form", ["mapping", "file"])
def test_a_composed_recipe_trains_and_its_weights_load_from_the_description(
        form, image_folder, tmp_path):
    description = {**_tiny("post", "subpixel", "residual"), "name": "tiny-edsr"}
    path = tmp_path / "tiny.yaml"  # a `model` mapping, as a recipe file holds it
    path.write_text(yaml.safe_dump({"model": description}))
    recipe = parse_recipe({
        "model": description if form == "mapping" else str(path), "scale": 2,
        "data": {"train": [str(image_folder)], "patch": 8, "batch": 2},
        "schedule": {"name": "constant", "steps": 2}, "validate_on": str(image_folder),
        "validate_every": 2, "checkpoint_every": 2,
    })
    result = train(recipe, tmp_path / "run", progress=False)
    assert result.steps == 2
    upscaler = superres.load(str(path), 2, weights=tmp_path / "run" / "best.safetensors")
    image = np.random.default_rng(0).integers(0, 256, (12, 10, 3), dtype=np.uint8)
    assert upscaler.upscale(image).shape == (24, 20, 3)


def test_a_composed_model_exports_to_onnx(tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="ONNX support is the optional [onnx] extra")
    pytest.importorskip("onnxscript", reason="ONNX support is the optional [onnx] extra")
    from superres.inference.onnx import export_onnx

    torch.manual_seed(0)
    model = get_model({**FSRCNN, "head": {"channels": 8, "kernel": 5},
                       "body": {"type": "residual", "blocks": 1, "channels": 4}}).build(2).eval()
    path = export_onnx(model, 1, tmp_path / "composed.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.rand(1, 1, 19, 23)
    (out,) = session.run(None, {"lr": x.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(out, model(x).numpy(), atol=1e-4)


def test_models_describe_prints_the_composed_models_row(tmp_path, capsys):
    path = tmp_path / "fsrcnn-twin.yml"
    path.write_text(yaml.safe_dump(FSRCNN))  # the bare description
    assert main(["models", "--describe", str(path), "--json"]) == EXIT_OK
    row = json.loads(capsys.readouterr().out)
    assert row["name"] == "fsrcnn-twin" and row["framework"] == "post-upsampling"
    assert row["params"]["3"] == get_model("fsrcnn").params(3)
    assert main(["models", "--describe", str(path)]) == EXIT_OK
    assert "12,809" in capsys.readouterr().out


@pytest.mark.parametrize(("change", "message"), [
    ({"framwork": "post"}, r"model: unknown key\(s\) framwork; known: name, framework"),
    ({"framework": "sideways"}, "model.framework is 'sideways'; expected one of pre, post, "
                                "progressive, iterative"),
    ({"body": {"type": "resnet"}}, "model.body.type is 'resnet'; expected one of plain, "
                                   "residual, recursive, dense, residual-dense, attention, rrdb"),
    ({"body": {"type": "plain", "depth": 3}}, r"model.body: unknown key\(s\) depth"),
    ({"body": {"type": "plain"}}, "model.body.blocks is missing: give an integer >= 1"),
    ({"head": {"channels": 8, "kernel": 4}}, "model.head.kernel is 4; expected an odd integer"),
    ({"upsampler": {"type": "back-projection", "stages": 2}},
     "model.upsampler.type is 'back-projection'; expected one of interp-conv, transposed"),
    ({"upsampler": {"type": "nearest-conv"}, "tail": None}, "model.tail: null"),
    ({"global_residual": True}, "global_residual is for the pre framework, not post"),
    ({"body": {"type": "dense", "blocks": 1, "layers": 2, "growth": 3, "skip": "h"}},
     r"channels \(8\) must be growth x layers \(6\)"),
    ({"name": "fsrcnn"}, "'fsrcnn' is a registered model's"),
    ({"activation": "swish"}, "model.activation is 'swish'; expected one of relu, prelu, leaky"),
])
def test_a_bad_description_is_a_one_line_error_naming_it(change, message):
    with pytest.raises(ValueError, match=message) as err:
        get_model({**_tiny("post", "subpixel", "plain"), **change})
    assert "\n" not in str(err.value)


def test_a_bad_description_file_is_a_usage_error_naming_the_file(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"model": {**_tiny("pre", "interpolation", "plain"),
                                              "upsampler": {"type": "subpixel"}}}))
    assert main(["models", "--describe", str(path)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("superres: error: bad.yaml: model.upsampler.type is 'subpixel'; "
                          "expected one of interpolation")
    assert err.count("\n") == 1


def test_the_parsed_description_fills_in_the_documented_defaults():
    c = parse({"framework": "pre", "color": "y", "head": {"channels": 16},
               "body": {"type": "residual", "blocks": 2}})
    assert (c.name, c.activation, c.head, c.tail) == (
        "composed", "relu", {"channels": 16, "kernel": 3, "activation": "relu"}, {"kernel": 3})
    assert c.body == {"type": "residual", "blocks": 2, "channels": 16, "kernel": 3,
                      "res_scale": 1.0}
    assert c.upsampler == {"type": "interpolation", "mode": "cubic"}
