"""Unpaired data: the sampler of independent LR/HR patches and `superres degrade`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from superres.cli import main
from superres.image.degrade import image_seed, parse_degradation
from superres.train.unpaired import UnpairedSampler, load_domain


def _folder(path: Path, sizes: list[tuple[int, int]], low: int, high: int) -> Path:
    """PNGs of random pixels in [low, high], so a patch tells which folder it came from."""
    path.mkdir()
    rng = np.random.default_rng(low)
    for i, (h, w) in enumerate(sizes):
        pixels = rng.integers(low, high + 1, size=(h, w, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(path / f"img{i}.png")
    return path


@pytest.fixture
def domains(tmp_path: Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    lr = _folder(tmp_path / "lr", [(20, 24), (30, 18)], 0, 100)
    hr = _folder(tmp_path / "hr", [(40, 48), (64, 36), (10, 10)], 150, 255)  # the last: too small
    return load_domain([str(lr)], "rgb", progress=False), load_domain([str(hr)], "rgb", False)


def _sampler(domains, seed: int = 3, shard: tuple[int, int] = (0, 1)) -> UnpairedSampler:
    lr, hr = domains
    return UnpairedSampler(lr, hr, scale=2, patch=8, batch=4, augment=True, seed=seed,
                           shard=shard)


def test_shapes_and_sides(domains):
    sampler = _sampler(domains)
    assert len(sampler.hr.images) == 2  # the 10 x 10 image has no 16 px patch
    for _ in range(5):
        lr, hr = sampler.next_batch()
        assert lr.shape == (4, 3, 8, 8) and hr.shape == (4, 3, 16, 16)
        assert lr.dtype == hr.dtype == torch.float32
        assert lr.max() <= 100 / 255 + 1e-6 and hr.min() >= 150 / 255 - 1e-6


def test_determinism_and_exact_resume(domains):
    a, b = _sampler(domains), _sampler(domains)
    for x, y in zip(a.next_batch(), b.next_batch(), strict=True):
        assert torch.equal(x, y)
    state = a.state_dict()
    expected = [a.next_batch() for _ in range(3)]
    resumed = _sampler(domains, seed=99)
    resumed.load_state_dict(state)
    for batch, again in zip(expected, (resumed.next_batch() for _ in range(3)), strict=True):
        assert all(torch.equal(x, y) for x, y in zip(batch, again, strict=True))
    other = _sampler(domains, seed=4).next_batch()[1]
    assert not torch.equal(other, _sampler(domains).next_batch()[1])


def test_shards_make_up_the_batch(domains):
    whole = _sampler(domains)
    shards = [_sampler(domains, shard=(rank, 2)) for rank in range(2)]
    for _ in range(3):
        lr, hr = whole.next_batch()
        parts = [shard.next_batch() for shard in shards]
        assert torch.equal(torch.cat([p[0] for p in parts]), lr)
        assert torch.equal(torch.cat([p[1] for p in parts]), hr)
    with pytest.raises(ValueError, match="multiple of the world size"):
        _sampler(domains, shard=(0, 3))


def test_too_small_images_are_refused(domains):
    lr, _ = domains
    with pytest.raises(ValueError, match="no HR image is at least 64 px"):
        UnpairedSampler(lr, lr, scale=8, patch=8, batch=2, augment=False, seed=0)


def test_degrade_writes_the_evaluation_lr(tmp_path, capsys):
    source = _folder(tmp_path / "hr", [(40, 48), (33, 26)], 0, 255)
    out = tmp_path / "lr"
    spec = "blur-downsample+jpeg:quality=40"
    assert main(["degrade", str(source), "-o", str(out), "-s", "4", "--degradation", spec,
                 "-q"]) == 0
    assert "2 LR images" in capsys.readouterr().out
    sizes = {p.name: Image.open(p).size for p in out.iterdir()}
    assert sizes == {"img0.png": (12, 10), "img1.png": (6, 8)}  # (W, H), modcropped
    hr = np.asarray(Image.open(source / "img1.png"))
    expected = parse_degradation(spec)(hr, 4, np.random.default_rng(image_seed("img1.png")))
    assert np.array_equal(np.asarray(Image.open(out / "img1.png")), expected)
    first = (out / "img0.png").read_bytes()
    assert main(["degrade", str(source), "-o", str(out), "-s", "4", "--degradation", spec,
                 "-q"]) == 0
    assert (out / "img0.png").read_bytes() == first  # the same on a rerun
    other = tmp_path / "seeded"
    assert main(["degrade", str(source), "-o", str(other), "-s", "4", "--degradation",
                 "downsample-noise", "--seed", "1", "-q"]) == 0
    assert main(["degrade", str(source), "-o", str(out), "-s", "4", "--degradation",
                 "downsample-noise", "-q"]) == 0
    assert (other / "img0.png").read_bytes() != (out / "img0.png").read_bytes()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary left


def test_degrade_reports_a_bad_image_and_goes_on(tmp_path, capsys):
    source = _folder(tmp_path / "hr", [(16, 16)], 0, 255)
    (source / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "lr"
    assert main(["degrade", str(source), "-o", str(out), "-s", "2", "-q"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "broken.png" in err[0] and err[0].startswith("superres: error:")
    assert [p.name for p in out.iterdir()] == ["img0.png"]


@pytest.mark.parametrize("args, message", [
    (["--degradation", "blurr"], "unknown degradation"),
    (["-s", "1"], "at least 2"),
    (["--missing"], "not a folder"),
])
def test_degrade_usage_errors(tmp_path, capsys, args, message):
    source = _folder(tmp_path / "hr", [(16, 16)], 0, 255)
    folder = str(tmp_path / "nowhere") if "--missing" in args else str(source)
    args = [a for a in args if a != "--missing"]
    assert main(["degrade", folder, "-o", str(tmp_path / "lr"), *args, "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
