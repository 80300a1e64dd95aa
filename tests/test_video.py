"""Video in and out: `superres upscale clip.mp4` decodes, upscales and re-encodes frame by
frame, keeps the frame rate and time base, copies the audio, and never leaves a half-written
file under the output's name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from superres.cli import main

av = pytest.importorskip("av", reason="video needs PyAV: pip install 'superres[video]'")

FRAMES, WIDTH, HEIGHT, FPS = 12, 32, 24, 12


def _can_encode(name: str) -> bool:
    try:
        av.codec.Codec(name, "w")
    except (av.FFmpegError, ValueError):
        return False
    return True


def make_clip(path: Path, width: int = WIDTH, height: int = HEIGHT) -> bool:
    """A tiny clip: a bar moving across a gradient, and a second of 440 Hz sine in AAC where
    the wheel's FFmpeg encodes it. Returns whether it has audio."""
    codec = "libx264" if _can_encode("libx264") else "mpeg4"
    with_audio = _can_encode("aac")
    with av.open(str(path), "w") as container:
        video = container.add_stream(codec, rate=FPS)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        if with_audio:
            audio = container.add_stream("aac", rate=48000)
            audio.layout = "mono"
            samples = (0.3 * np.sin(2 * np.pi * 440 * np.arange(48000) / 48000))
            for start in range(0, 48000, 1024):
                frame = av.AudioFrame.from_ndarray(
                    samples[None, start:start + 1024].astype(np.float32), format="flt",
                    layout="mono")
                frame.sample_rate, frame.pts = 48000, start
                container.mux(audio.encode(frame))
            container.mux(audio.encode(None))
        for i in range(FRAMES):
            pixels = np.zeros((height, width, 3), np.uint8)
            pixels[..., 1] = (np.arange(width) * 7)[None].astype(np.uint8)
            pixels[:, (3 * i) % width:(3 * i) % width + 4] = 255
            container.mux(video.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        container.mux(video.encode(None))
    return with_audio


def test_upscales_a_clip_keeping_rate_and_audio(tmp_path: Path) -> None:
    clip, out = tmp_path / "clip.mp4", tmp_path / "out.mp4"
    with_audio = make_clip(clip)
    assert main(["upscale", str(clip), "-m", "bicubic", "-s", "2", "-o", str(out), "-q"]) == 0
    with av.open(str(clip)) as source, av.open(str(out)) as result:
        video = result.streams.video[0]
        frames = list(result.decode(video))
        assert len(frames) == FRAMES
        assert (frames[0].width, frames[0].height) == (2 * WIDTH, 2 * HEIGHT)
        assert video.average_rate == FPS
        assert video.time_base == source.streams.video[0].time_base
        assert len(result.streams.audio) == int(with_audio)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_odd_size_is_padded_to_even(tmp_path: Path) -> None:
    """yuv420p needs an even width and height: an odd upscaled frame gains one repeated row
    and column rather than losing upscaled pixels."""
    from superres.video.stream import _even

    padded = _even(np.arange(3 * 5 * 3, dtype=np.uint8).reshape(3, 5, 3))
    assert padded.shape == (4, 6, 3)
    assert (padded[3] == padded[2]).all() and (padded[:, 5] == padded[:, 4]).all()


def test_broken_video_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    clip = tmp_path / "broken.mp4"
    clip.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))
    assert main(["upscale", str(clip), "-m", "bicubic", "-s", "2", "-q"]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1 and str(clip) in errors[0]
    assert not (tmp_path / "broken_x2.mp4").exists()


def test_interrupted_run_leaves_no_output(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from superres.inference.upscaler import Upscaler

    clip, out = tmp_path / "clip.mp4", tmp_path / "out.mp4"
    make_clip(clip)
    calls = []
    real = Upscaler.upscale

    def interrupt(self: Upscaler, image: np.ndarray) -> np.ndarray:
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real(self, image)

    monkeypatch.setattr(Upscaler, "upscale", interrupt)
    assert main(["upscale", str(clip), "-m", "bicubic", "-s", "2", "-o", str(out), "-q"]) == 130
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def test_folder_of_frames_still_works(tmp_path: Path) -> None:
    """A folder of frames is images, as before; a video lying in it is skipped, not read."""
    from PIL import Image

    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        Image.new("RGB", (16, 12), (10 * i, 0, 0)).save(frames / f"{i:04d}.png")
    out = tmp_path / "up"
    out.mkdir()
    assert main(["upscale", str(frames), "-m", "bicubic", "-s", "2", "-o", str(out), "-q"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [f"{i:04d}_x2.png" for i in range(3)]
    assert Image.open(out / "0000_x2.png").size == (32, 24)
