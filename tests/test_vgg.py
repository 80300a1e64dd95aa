"""VGG features and perceptual metrics: torchvision's layout, weights only from files (never
unpickled), clear errors for missing files and too-deep layers, LPIPS wiring."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

from superres.image.sample import sample_image
from superres.metrics.perceptual import LPIPS, LPIPS_HEAD_URL, VGGDistance, find_lpips_head
from superres.nn.vgg import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    VGG19_URL,
    VGGFeatures,
    find_vgg_weights,
    layer_index,
    layer_names,
)
from superres.weights import WeightsNotFoundError, read_state_dict

torch.set_num_threads(1)

# torchvision's vgg19().features: (index, output channels, input channels) of each convolution.
TORCHVISION_VGG19_CONVS = [
    (0, 64, 3), (2, 64, 64), (5, 128, 64), (7, 128, 128),
    (10, 256, 128), (12, 256, 256), (14, 256, 256), (16, 256, 256),
    (19, 512, 256), (21, 512, 512), (23, 512, 512), (25, 512, 512),
    (28, 512, 512), (30, 512, 512), (32, 512, 512), (34, 512, 512),
]  # fmt: skip
TORCHVISION_VGG19_POOLS = [4, 9, 18, 27, 36]
TRUNCATED_FILE = "vgg19_imagenet_conv1_1-conv3_1.safetensors"


def _synthetic_state(last_conv: int, classifier: bool = False) -> dict[str, torch.Tensor]:
    """A torchvision-layout VGG19 state dict up to feature index `last_conv`, each tensor
    filled with a value that identifies it."""
    state = {}
    for index, out_channels, in_channels in TORCHVISION_VGG19_CONVS:
        if index <= last_conv:
            state[f"features.{index}.weight"] = torch.full(
                (out_channels, in_channels, 3, 3), index / 1000
            )
            state[f"features.{index}.bias"] = torch.full((out_channels,), -index / 1000)
    if classifier:  # ignored whatever its shape: small stand-ins for the 4096-wide layers
        state |= {"classifier.0.weight": torch.ones(4, 8), "classifier.6.bias": torch.ones(4)}
    return state


def _chart(height: int = 32, width: int = 48) -> torch.Tensor:
    """The built-in test chart as a (1, 3, H, W) tensor in [0, 1]."""
    pixels = np.asarray(sample_image(width, height), dtype=np.float32) / 255
    return torch.from_numpy(pixels).permute(2, 0, 1)[None].contiguous()


@pytest.fixture
def real_vgg19() -> Path:
    """The real VGG19 weights file in $SUPERRES_WEIGHTS, or skip saying how to provide it."""
    root = os.environ.get("SUPERRES_WEIGHTS", "").strip()
    if not root:
        pytest.skip("SUPERRES_WEIGHTS is not set to the folder of pretrained weights")
    try:
        return find_vgg_weights("vgg19")
    except WeightsNotFoundError:
        pytest.skip(f"no VGG19 weights ({TRUNCATED_FILE} or {VGG19_URL}) in {root}")


@pytest.fixture
def empty_weights_folder(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("SUPERRES_WEIGHTS", str(tmp_path))
    return tmp_path


# ----------------------------------------------------------------------------- layout


def test_layer_names_index_torchvision_vgg19_features_0_to_36():
    names = layer_names("vgg19")
    assert len(names) == 37
    assert [names[i] for i, _, _ in TORCHVISION_VGG19_CONVS] == [
        f"conv{b}_{n}" for b, count in enumerate((2, 2, 4, 4, 4), 1) for n in range(1, count + 1)
    ]
    assert [names[i + 1] for i, _, _ in TORCHVISION_VGG19_CONVS] == [
        f"relu{b}_{n}" for b, count in enumerate((2, 2, 4, 4, 4), 1) for n in range(1, count + 1)
    ]
    assert [names[i] for i in TORCHVISION_VGG19_POOLS] == [f"pool{b}" for b in range(1, 6)]
    # The layers the papers name: SRGAN's VGG2,2 and VGG5,4, ESRGAN's conv5_4.
    assert layer_index("relu2_2") == 8
    assert layer_index("relu5_4") == 35
    assert layer_index("conv5_4") == 34


def test_vgg16_layer_names_give_lpips_taps_at_torchvision_indices():
    assert len(layer_names("vgg16")) == 31
    taps = ["relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3"]
    assert [layer_index(n, "vgg16") for n in taps] == [3, 8, 15, 22, 29]


def test_full_vgg19_has_torchvision_modules_and_state_dict_keys():
    vgg = VGGFeatures(["pool5"], pretrained=False)
    layers = list(vgg.features)
    assert len(layers) == 37
    for index, out_channels, in_channels in TORCHVISION_VGG19_CONVS:
        conv = layers[index]
        assert isinstance(conv, nn.Conv2d)
        assert (conv.out_channels, conv.in_channels, conv.kernel_size, conv.padding) == (
            out_channels,
            in_channels,
            (3, 3),
            (1, 1),
        )
        assert isinstance(layers[index + 1], nn.ReLU)
    for index in TORCHVISION_VGG19_POOLS:
        assert isinstance(layers[index], nn.MaxPool2d)
        assert (layers[index].kernel_size, layers[index].stride) == (2, 2)
    keys = {f"features.{i}.{p}" for i, _, _ in TORCHVISION_VGG19_CONVS for p in ("weight", "bias")}
    assert set(vgg.state_dict()) == keys


def test_only_layers_up_to_the_deepest_requested_one_are_built():
    vgg = VGGFeatures(["relu1_1", "relu2_2"], pretrained=False)
    assert len(vgg.features) == layer_index("relu2_2") + 1


def test_unknown_layer_is_an_error_listing_the_layers():
    with pytest.raises(ValueError, match=r"no layer 'relu2_3'.*conv1_1, relu1_1"):
        VGGFeatures(["relu2_3"], pretrained=False)


# ----------------------------------------------------------------------------- behaviour


def test_extractor_is_frozen_and_stays_in_eval_mode_inside_a_training_parent():
    vgg = VGGFeatures(["relu1_1"], pretrained=False)
    assert not any(p.requires_grad for p in vgg.parameters())
    parent = nn.Sequential(vgg).train()
    assert parent.training and not vgg.training


def test_conv_layer_is_before_the_relu_and_relu_after_it():
    vgg = VGGFeatures(["conv1_2", "relu1_2", "relu3_1"], pretrained=False)
    out = vgg(torch.rand(2, 3, 16, 20))
    assert torch.equal(out["relu1_2"], out["conv1_2"].clamp(min=0))
    assert (out["conv1_2"] < 0).any()
    assert out["relu3_1"].shape == (2, 256, 4, 5)
    assert list(out) == ["conv1_2", "relu1_2", "relu3_1"]


def test_gradients_reach_the_input_but_not_the_frozen_weights():
    vgg = VGGFeatures(["relu2_1"], pretrained=False)
    image = torch.rand(1, 3, 8, 8, requires_grad=True)
    vgg(image)["relu2_1"].sum().backward()
    assert image.grad is not None and image.grad.abs().sum() > 0
    assert all(p.grad is None for p in vgg.parameters())


def test_input_that_is_not_rgb_is_a_clear_error():
    vgg = VGGFeatures(["relu1_1"], pretrained=False)
    with pytest.raises(ValueError, match=r"RGB images shaped \(N, 3, H, W\)"):
        vgg(torch.rand(1, 1, 8, 8))


# ----------------------------------------------------------------------------- weights


def test_a_full_vgg19_state_dict_with_classifier_loads_every_layer():
    state = _synthetic_state(last_conv=34, classifier=True)
    vgg = VGGFeatures(["conv5_4", "pool5"], weights=state)
    assert torch.equal(vgg.features[34].weight, state["features.34.weight"])
    out = vgg(torch.rand(1, 3, 32, 32))
    assert out["pool5"].shape == (1, 512, 1, 1)


def test_asking_deeper_than_truncated_weights_names_the_deepest_available_layer():
    state = _synthetic_state(last_conv=10)  # conv1_1 .. conv3_1, like the truncated file
    VGGFeatures(["relu3_1"], weights=state)
    with pytest.raises(ValueError, match=r"relu3_2 is deeper.*deepest available layer is relu3_1"):
        VGGFeatures(["relu1_1", "relu3_2"], weights=state)


def test_missing_weights_file_says_where_it_looked_and_gives_the_official_url(
    empty_weights_folder,
):
    with pytest.raises(FileNotFoundError) as error:
        VGGFeatures(["relu2_2"])
    message = str(error.value)
    assert str(empty_weights_folder) in message
    assert "$SUPERRES_WEIGHTS" in message
    assert VGG19_URL == "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
    assert VGG19_URL in message
    assert "sha256 starts with dcbb9e9d" in message


def test_without_superres_weights_the_error_says_it_is_not_set(tmp_path, monkeypatch):
    monkeypatch.delenv("SUPERRES_WEIGHTS", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with pytest.raises(WeightsNotFoundError, match=r"\$SUPERRES_WEIGHTS is not set"):
        VGGFeatures(["relu1_1"])


def test_weights_search_prefers_torchvisions_file_and_skips_batch_norm_variants(
    empty_weights_folder,
):
    save_file(_synthetic_state(last_conv=0), empty_weights_folder / "vgg19_bn-c79401a0.safetensors")
    with pytest.raises(WeightsNotFoundError):
        find_vgg_weights()
    save_file(_synthetic_state(last_conv=10), empty_weights_folder / TRUNCATED_FILE)
    assert find_vgg_weights() == empty_weights_folder / TRUNCATED_FILE
    torch.save(_synthetic_state(last_conv=34), empty_weights_folder / "vgg19-dcbb9e9d.pth")
    assert find_vgg_weights() == empty_weights_folder / "vgg19-dcbb9e9d.pth"
    assert VGGFeatures(["relu5_4"]).weights_source.endswith("vgg19-dcbb9e9d.pth")


def test_a_pth_state_dict_loads_with_the_same_tensors(tmp_path):
    state = _synthetic_state(last_conv=2)
    torch.save(state, tmp_path / "vgg19.pth")
    vgg = VGGFeatures(["relu1_2"], weights=tmp_path / "vgg19.pth")
    assert torch.equal(vgg.features[2].bias, state["features.2.bias"])


_UNPICKLED: list[str] = []


def _record_unpickling(text: str) -> str:
    _UNPICKLED.append(text)
    return text


class _PickledCall:
    """An object whose unpickling would run `_record_unpickling`."""

    def __reduce__(self):
        return _record_unpickling, ("code ran",)


def test_a_pth_holding_pickled_objects_is_refused_without_running_them(tmp_path):
    path = tmp_path / "vgg19-evil.pth"
    torch.save({"features.0.weight": _PickledCall()}, path)
    with pytest.raises(ValueError, match="refused without unpickling"):
        VGGFeatures(["relu1_1"], weights=path)
    assert _UNPICKLED == []


def test_a_vgg16_state_dict_is_not_taken_for_vgg19():
    vgg16_state = {f"features.{i}.weight": torch.zeros(256, 256, 3, 3) for i in (12, 14)} | {
        "features.17.weight": torch.zeros(512, 256, 3, 3)
    }  # conv4_1 of VGG16
    with pytest.raises(ValueError, match=r"not a torchvision vgg19 state dict.*features\.17"):
        VGGFeatures(["relu1_1"], weights=_synthetic_state(10) | vgg16_state)


def test_a_tensor_of_the_wrong_shape_is_named():
    state = _synthetic_state(last_conv=2) | {"features.2.weight": torch.zeros(64, 32, 3, 3)}
    with pytest.raises(ValueError, match=r"features\.2\.weight has shape \(64, 32, 3, 3\)"):
        VGGFeatures(["relu1_2"], weights=state)


def test_random_weights_only_when_asked_and_never_together_with_a_file():
    assert VGGFeatures(["relu1_1"], pretrained=False).weights_source.startswith("random")
    with pytest.raises(ValueError, match="pretrained=False"):
        VGGFeatures(["relu1_1"], weights=_synthetic_state(0), pretrained=False)


# ----------------------------------------------------------------------------- the real file


def test_real_weights_load_as_in_the_file_and_normalise_with_imagenet_statistics(real_vgg19):
    tensors = read_state_dict(real_vgg19)
    vgg = VGGFeatures(["conv1_1", "relu1_1", "relu3_1"], weights=real_vgg19)
    assert torch.equal(vgg.features[0].weight, tensors["features.0.weight"])
    assert torch.equal(vgg.features[10].bias, tensors["features.10.bias"])
    chart = _chart()
    out = vgg(chart)
    assert torch.isfinite(out["relu1_1"]).all() and out["relu1_1"].amax() > 0
    mean, std = (
        torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1),
        torch.tensor(IMAGENET_STD).view(1, 3, 1, 1),
    )
    expected = F.conv2d(
        (chart - mean) / std, tensors["features.0.weight"], tensors["features.0.bias"], padding=1
    )
    torch.testing.assert_close(out["conv1_1"], expected)


def test_real_weights_found_through_superres_weights_hold_at_least_relu3_1(real_vgg19):
    vgg = VGGFeatures(["relu2_2", "relu3_1"])
    assert vgg.weights_source == str(real_vgg19)
    if real_vgg19.name == TRUNCATED_FILE:
        with pytest.raises(ValueError, match="deepest available layer is relu3_1"):
            VGGFeatures(["conv5_4"])


# ----------------------------------------------------------------------------- metrics


def test_vgg_distance_is_zero_for_identical_images_symmetric_and_positive_otherwise():
    metric = VGGDistance(pretrained=False)
    x, y = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    assert torch.equal(metric(x, x), torch.zeros(2))
    assert (metric(x, y) > 0).all()
    torch.testing.assert_close(metric(x, y), metric(y, x))


def test_vgg_distance_with_real_features_grows_with_the_noise(real_vgg19):
    metric = VGGDistance(weights=real_vgg19)
    chart = _chart()
    noise = torch.randn(chart.shape, generator=torch.Generator().manual_seed(0))
    mild, strong = (metric(chart, (chart + s * noise).clamp(0, 1)).item() for s in (0.02, 0.2))
    assert 0 < mild < strong


def test_lpips_wiring_with_random_weights():
    lpips = LPIPS(pretrained=False)
    x, y = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    assert torch.equal(lpips(x, x), torch.zeros(2))
    distance = lpips(x, y)
    assert distance.shape == (2,) and (distance > 0).all()
    torch.testing.assert_close(distance, lpips(y, x))
    assert not any(p.requires_grad for p in lpips.parameters())


def test_lpips_reads_the_official_head_layout(tmp_path):
    channels = (64, 128, 256, 512, 512)
    head = {f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1) for k, c in enumerate(channels)}
    torch.save(head, tmp_path / "vgg.pth")
    backbone = VGGFeatures(["relu5_3"], pretrained=False, arch="vgg16").state_dict()
    lpips = LPIPS(backbone=backbone, head=tmp_path / "vgg.pth")
    assert torch.equal(lpips.head[3].weight, head["lin3.model.1.weight"])
    with pytest.raises(ValueError, match=r"no lin4\.model\.1\.weight"):
        LPIPS(backbone=backbone, head={k: v for k, v in head.items() if k != "lin4.model.1.weight"})


def test_missing_lpips_head_says_where_to_get_it(empty_weights_folder):
    with pytest.raises(WeightsNotFoundError, match=r"lpips_v0\.1_vgg\.pth") as error:
        find_lpips_head()
    assert LPIPS_HEAD_URL in str(error.value)


def test_lpips_with_official_weights_is_calibrated():
    root = os.environ.get("SUPERRES_WEIGHTS", "").strip()
    if not root:
        pytest.skip("SUPERRES_WEIGHTS is not set to the folder of pretrained weights")
    try:
        find_vgg_weights("vgg16")
        find_lpips_head()
    except WeightsNotFoundError as missing:
        pytest.skip(f"LPIPS needs torchvision's VGG16 and the official LPIPS v0.1 head: {missing}")
    lpips = LPIPS()
    assert all((layer.weight >= 0).all() for layer in lpips.head)  # trained heads are clamped
    chart = _chart(64, 64)
    noise = torch.randn(chart.shape, generator=torch.Generator().manual_seed(0))
    mild, strong = (lpips(chart, (chart + s * noise).clamp(0, 1)).item() for s in (0.02, 0.2))
    assert lpips(chart, chart).item() == 0
    assert 0 < mild < strong < 1
