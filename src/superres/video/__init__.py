"""Video super-resolution: any image model run frame by frame over a video file, and a video
model (VESPCN) on its window of 2r + 1 frames (`superres.inference.temporal`).

Above `inference` (it drives an `Upscaler`), below the command line that calls it. PyAV
(`pip install superres[video]`) is imported only when a video is opened, so the package
works without it.
"""

from __future__ import annotations

from superres.video.stream import VIDEO_SUFFIXES, VideoResult, is_video, upscale_video

__all__ = ["VIDEO_SUFFIXES", "VideoResult", "is_video", "upscale_video"]
