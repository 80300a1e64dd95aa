"""Decode, upscale and encode a video one frame at a time, so memory stays bounded whatever
its length (a video model holds its window of 2r + 1 decoded frames, no more); audio is
copied packet for packet (remuxed, never re-encoded).

The result goes to a hidden temporary file beside the output and is renamed over it only
once complete: an error or Ctrl-C leaves no half-written video under the final name.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from superres.image.io import ImageReadError
from superres.inference.temporal import TemporalWindows, upscale_window

if TYPE_CHECKING:
    from superres.inference.upscaler import Upscaler

VIDEO_SUFFIXES: frozenset[str] = frozenset({".mp4", ".mkv", ".mov", ".avi", ".webm"})

# Encoders that take a constant-quality factor (CRF); others get a generous bit rate instead.
_CRF_CODECS = frozenset({"libx264", "libx265", "libvpx-vp9", "libsvtav1"})
# Bits per output pixel per frame for encoders without CRF (mpeg4): about visually lossless.
_BITS_PER_PIXEL = 0.3


def is_video(path: str | os.PathLike[str]) -> bool:
    """Whether `path` names a video by its suffix (the content is checked when it is opened)."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


@dataclass(frozen=True)
class VideoResult:
    """What was written: frames, output size (even, see `upscale_video`), codec, frame rate."""

    path: Path
    frames: int
    width: int
    height: int
    codec: str
    fps: Fraction | None
    audio_streams: int


def default_codec(target: Path) -> str:
    """H.264 (libx264) where the FFmpeg in PyAV's wheel has it, else MPEG-4 part 2, which
    every build has; VP9 for .webm, the only video codecs WebM allows being VP8/VP9/AV1."""
    preferred = ["libvpx-vp9", "libvpx"] if target.suffix.lower() == ".webm" else ["libx264"]
    for name in preferred:
        if _can_encode(name):
            return name
    return "mpeg4"


def _can_encode(name: str) -> bool:
    import av

    try:
        av.codec.Codec(name, "w")
    except (av.FFmpegError, ValueError):
        return False
    return True


def upscale_video(
    upscaler: Upscaler,
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    *,
    codec: str | None = None,
    crf: int = 18,
    progress: bool = True,
    description: str = "",
) -> VideoResult:
    """Upscale every frame of `source` with `upscaler` into `target`, keeping each frame's
    timestamp (so the frame rate and time base survive, variable rates included) and copying
    every audio stream. Encoded as yuv420p, which needs an even width and height: an odd
    size is padded by one pixel, repeating the last row or column, rather than cropped, so
    no upscaled pixel is lost.

    A file PyAV cannot open or decode raises ImageReadError ('<path>: <reason>', one line).
    """
    try:
        import av
    except ImportError as err:
        raise ImportError("video needs PyAV: pip install 'superres[video]'") from err
    from tqdm import tqdm

    source, target = Path(source), Path(target)
    codec = codec or default_codec(target)
    if not _can_encode(codec):
        raise ValueError(f"this FFmpeg build (PyAV {av.__version__}) cannot encode {codec!r}")
    try:
        reader = av.open(str(source))
    except (av.FFmpegError, ValueError) as err:
        raise ImageReadError(source, f"cannot open as a video: {_reason(err)}") from err
    temp = target.with_name(f".{target.stem}.partial{target.suffix}")
    try:
        with reader:
            if not reader.streams.video:
                raise ImageReadError(source, "has no video stream")
            video_in = reader.streams.video[0]
            video_in.thread_type = "AUTO"
            target.parent.mkdir(parents=True, exist_ok=True)
            with av.open(str(temp), "w") as writer:
                audio = {s.index: writer.add_stream_from_template(s)
                         for s in reader.streams.audio}
                bar = tqdm(total=video_in.frames or None, unit="frame", desc=description,
                           disable=not progress)
                with bar:
                    encode = _Encoder(writer, video_in, codec, crf, upscaler)
                    for packet in reader.demux(video_in, *reader.streams.audio):
                        if packet.stream.type == "audio":
                            if packet.dts is not None:  # None: the demuxer's end marker
                                packet.stream = audio[packet.stream.index]
                                writer.mux(packet)
                            continue
                        for frame in _decode(packet, source):
                            encode(frame)
                            bar.update()
                    encode(None)
                if encode.frames == 0:
                    raise ImageReadError(source, "has no decodable video frames")
        os.replace(temp, target)
    except av.FFmpegError as err:
        temp.unlink(missing_ok=True)
        raise ImageReadError(source, _reason(err)) from err
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    rate = video_in.average_rate
    return VideoResult(target, encode.frames, encode.width, encode.height, codec,
                       Fraction(rate) if rate else None, len(audio))


def _decode(packet: Any, source: Path) -> list[Any]:
    """The frames of one packet; a corrupt packet is the input's fault, named as such."""
    import av

    try:
        return packet.decode()
    except av.FFmpegError as err:
        raise ImageReadError(source, f"cannot decode: {_reason(err)}") from err


def _reason(err: BaseException) -> str:
    """FFmpeg's message without the file name PyAV appends (the caller names the file)."""
    return getattr(err, "strerror", None) or str(err)


class _Encoder:
    """Upscales decoded frames and encodes them into a new video stream of `writer` with the
    input's frame rate and time base and the chosen quality. Called with None, it flushes."""

    def __init__(self, writer: Any, video_in: Any, codec: str, crf: int,
                 upscaler: Upscaler) -> None:
        self.upscale: Callable[[Sequence[np.ndarray]], np.ndarray] = partial(
            upscale_window, upscaler)
        # a video model's window of 2r + 1 decoded frames: (pixels, pts, time base) each
        self.windows: TemporalWindows[tuple[np.ndarray, Any, Any]] = TemporalWindows(
            upscaler.spec.radius)
        self.writer, self.frames = writer, 0
        # the size comes from the input's, as the stream must exist before the first packet
        # (audio may come before any video frame) is muxed
        self.width = _round_up_even(video_in.codec_context.width * upscaler.scale)
        self.height = _round_up_even(video_in.codec_context.height * upscaler.scale)
        rate = video_in.average_rate or video_in.guessed_rate or 25
        stream = writer.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = self.width, self.height, "yuv420p"
        stream.time_base = stream.codec_context.time_base = video_in.time_base
        if codec in _CRF_CODECS:
            stream.options = {"crf": str(crf), **({"b": "0"} if "vpx" in codec else {})}
        else:
            stream.bit_rate = int(self.width * self.height * float(rate) * _BITS_PER_PIXEL)
        self.stream = stream

    def __call__(self, frame: Any) -> None:
        """Take the next decoded frame, and encode the frames whose window it completes
        (at once for an image model; r frames later for a video model)."""
        if frame is None:
            for window in self.windows.finish():
                self._encode(window)
            self.writer.mux(self.stream.encode(None))
            return
        item = (frame.to_ndarray(format="rgb24"), frame.pts, frame.time_base)
        for window in self.windows.push(item):
            self._encode(window)

    def _encode(self, window: tuple[tuple[np.ndarray, Any, Any], ...]) -> None:
        import av

        pixels, pts, time_base = window[len(window) // 2]
        if any(other[0].shape != pixels.shape for other in window):
            raise ValueError(f"frame {self.frames}: a video model's window needs frames of "
                             "one size, and the size changes here")
        pixels = _even(self.upscale([other[0] for other in window]))
        if pixels.shape[:2] != (self.height, self.width):  # a frame of another size mid-way
            raise ValueError(f"frame {self.frames} upscales to {pixels.shape[1]}x"
                             f"{pixels.shape[0]}, not {self.width}x{self.height}")
        out = av.VideoFrame.from_ndarray(pixels, format="rgb24").reformat(format="yuv420p")
        out.pts, out.time_base = pts, time_base
        self.writer.mux(self.stream.encode(out))
        self.frames += 1


def _round_up_even(n: int) -> int:
    return n + n % 2


def _even(pixels: np.ndarray) -> np.ndarray:
    """Pad an odd height or width by one repeated row or column (yuv420p halves both)."""
    pad_h, pad_w = pixels.shape[0] % 2, pixels.shape[1] % 2
    if not (pad_h or pad_w):
        return pixels
    return np.pad(pixels, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
