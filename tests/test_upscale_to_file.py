"""A large output is written to its file as its tiles finish: the same file as the
whole-image path (PNG and TIFF byte for byte, JPEG pixel for pixel), never half a file under
the final name, and far less memory than the image."""

from __future__ import annotations

import filecmp
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

import superres.inference.upscaler as upscaler_module
from superres.cli import EXIT_OK, main
from superres.image.io import Picture, read_image
from superres.inference.streaming import Streamer
from superres.inference.upscaler import load


def photo(width: int, height: int, channels: int = 3) -> Picture:
    rng = np.random.default_rng(channels)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    planes = [110 + 70 * np.sin(x / (7 + 3 * c)) * np.cos(y / 11) + 40 * ((x + y) % 40 > 20)
              + rng.normal(0, 6, (height, width)) for c in range(channels)]
    return Picture(np.clip(np.stack(planes, axis=2), 0, 255).astype(np.uint8), None)


@pytest.fixture(scope="module")
def fsrcnn():
    return load("fsrcnn", 2, tile=128)  # 600 x 400 LR: 5 x 4 tiles, several rows of them


@pytest.mark.parametrize(("suffix", "channels"), [("png", 3), ("tif", 3), ("jpg", 3),
                                                  ("png", 1)])
def test_a_streamed_file_is_the_whole_image_paths_file(fsrcnn, tmp_path, suffix, channels):
    picture = photo(600, 400, channels)
    whole = fsrcnn.upscale_to_file(picture, tmp_path / f"whole.{suffix}", stream=False)
    streamed = fsrcnn.upscale_to_file(picture, tmp_path / f"streamed.{suffix}", stream=True)
    assert filecmp.cmp(whole, streamed, shallow=False)  # JPEG too: one strip at this size
    assert Image.open(streamed).size == (1200, 800)


def test_jpeg_of_many_strips_decodes_to_the_whole_image_paths_pixels(tmp_path):
    bicubic = load("bicubic", 4, tile=96)
    picture = photo(1100, 400)  # 4400 x 1600: strips of 632 rows (8 MB), 3 of them
    whole = bicubic.upscale_to_file(picture, tmp_path / "whole.jpg", stream=False)
    streamed = bicubic.upscale_to_file(picture, tmp_path / "streamed.jpg", stream=True)
    assert streamed.read_bytes().count(b"\xff\xd0") + streamed.read_bytes().count(
        b"\xff\xd1") == 2  # the restart markers between the strips
    assert np.array_equal(read_image(whole).pixels, read_image(streamed).pixels)


def fail_at(monkeypatch, call: int, error: BaseException) -> None:
    """Make the `call`-th tile raise `error`, once."""
    cut, calls = Streamer._cut, []

    def failing(self, *args):
        calls.append(1)
        if len(calls) == call:
            raise error
        return cut(self, *args)

    monkeypatch.setattr(Streamer, "_cut", failing)


def test_an_interrupted_run_leaves_the_old_file_and_nothing_else(fsrcnn, tmp_path,
                                                                   monkeypatch):
    target = tmp_path / "out.png"
    target.write_bytes(b"the previous result")
    fail_at(monkeypatch, 12, KeyboardInterrupt())  # rows of tiles already encoded by then
    with pytest.raises(KeyboardInterrupt):
        fsrcnn.upscale_to_file(photo(600, 400), target, stream=True)
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]
    assert target.read_bytes() == b"the previous result"


def test_running_out_of_memory_midway_writes_the_file_anew(tmp_path, monkeypatch):
    picture = photo(600, 400)
    expected = load("fsrcnn", 2, tile=64).upscale_to_file(picture, tmp_path / "a.png",
                                                          stream=False)
    fail_at(monkeypatch, 12, RuntimeError("DefaultCPUAllocator: not enough memory"))
    with pytest.warns(UserWarning, match="retrying with 64-pixel tiles"):
        streamed = load("fsrcnn", 2, tile=128).upscale_to_file(picture, tmp_path / "b.png",
                                                               stream=True)
    assert filecmp.cmp(expected, streamed, shallow=False)


def test_the_command_line_streams_large_outputs(tmp_path, monkeypatch):
    Image.fromarray(photo(300, 200).pixels).save(tmp_path / "in.png")
    streamed = []
    write_rows = upscaler_module.write_rows
    monkeypatch.setattr(upscaler_module, "write_rows",
                        lambda *args, **kw: streamed.append(write_rows(*args, **kw)))
    monkeypatch.setattr(upscaler_module, "STREAM_PIXELS", 1)
    out = tmp_path / "out.png"
    assert main(["upscale", str(tmp_path / "in.png"), "-s", "2", "-o", str(out), "-q"]) == EXIT_OK
    assert streamed == [out]
    expected = load("fsrcnn", 2, tile=512).upscale_to_file(read_image(tmp_path / "in.png"),
                                                           tmp_path / "expected.png",
                                                           stream=False)
    assert filecmp.cmp(expected, out, shallow=False)


def test_images_with_alpha_are_not_streamed(fsrcnn, tmp_path):
    picture = Picture(photo(40, 30).pixels, np.full((30, 40), 255, np.uint8))
    with pytest.raises(ValueError, match="without alpha"):
        fsrcnn.upscale_to_file(picture, tmp_path / "a.png", stream=True)
    assert Image.open(fsrcnn.upscale_to_file(picture, tmp_path / "a.png")).mode == "RGBA"


CHILD = textwrap.dedent("""
    import resource, sys
    import numpy as np, torch
    from superres.image.io import Picture
    from superres.inference.upscaler import load
    torch.set_num_threads(1)
    up = load("bicubic", 4, tile=128)
    rng = np.random.default_rng(0)
    picture = Picture(rng.integers(0, 256, (1500, 2000, 3), dtype=np.uint8), None)
    up.upscale_to_file(Picture(picture.pixels[:64, :64].copy(), None), sys.argv[1] + ".tif",
                       stream=True)  # everything but the output is in memory from here on
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    up.upscale_to_file(picture, sys.argv[1], stream=True)
    print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024)
""")


def test_a_streamed_output_takes_a_fraction_of_its_size_in_memory(tmp_path):
    out = tmp_path / "big.tif"  # 8000 x 6000 RGB: 144 MB, 192 MB as a Pillow image
    grown = int(subprocess.run([sys.executable, "-c", CHILD, str(out)], check=True,
                               capture_output=True, text=True).stdout)
    assert out.stat().st_size > 144_000_000
    assert grown < 64_000_000  # the whole-image path grows by 218 MB here
