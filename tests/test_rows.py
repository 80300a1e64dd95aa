"""Files written a band of rows at a time are the files Pillow writes for the whole image:
PNG and TIFF byte for byte, JPEG pixel for pixel (strips joined by restart markers)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from superres.image.rows import JpegRows, PngRows, TiffRows, check_rows, write_rows


def photo(width: int, height: int, channels: int, seed: int = 0) -> np.ndarray:
    """Smooth gradients with edges and noise: every PNG filter wins somewhere."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    planes = [96 + 80 * np.sin(x / (9 + 4 * c)) * np.cos(y / 13) + 40 * ((x + 2 * y) % 50 > 25)
              + rng.normal(0, 4, (height, width)) for c in range(channels)]
    pixels = np.clip(np.stack(planes, axis=2), 0, 255).astype(np.uint8)
    pixels[: height // 4, : width // 3] = 200  # flat: None and Up win there
    return pixels


def pillow_bytes(pixels: np.ndarray, image_format: str) -> bytes:
    image = Image.fromarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels)
    encoded = io.BytesIO()
    options = {"quality": 95, "subsampling": 0} if image_format == "JPEG" else {}
    image.save(encoded, image_format, **options)
    return encoded.getvalue()


def streamed_bytes(writer: type, pixels: np.ndarray, band: int) -> bytes:
    height, width, channels = pixels.shape
    encoded = io.BytesIO()
    rows = writer(encoded, width, height, channels, 95)
    for top in range(0, height, band):
        rows.write(pixels[top : top + band])
    rows.finish()
    return encoded.getvalue()


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize(("writer", "image_format"), [(PngRows, "PNG"), (TiffRows, "TIFF")])
def test_png_and_tiff_streamed_in_bands_are_pillows_bytes(writer, image_format, channels):
    pixels = photo(301, 203, channels)
    for band in (1, 7, 203):
        assert streamed_bytes(writer, pixels, band) == pillow_bytes(pixels, image_format)


def test_a_png_wider_than_pillows_buffer_keeps_its_idat_chunks():
    pixels = photo(17_000, 6, 3)  # IDAT chunks of width * 4 bytes, not 64 KB
    assert streamed_bytes(PngRows, pixels, 4) == pillow_bytes(pixels, "PNG")


@pytest.mark.parametrize("channels", [1, 3])
def test_jpeg_in_strips_decodes_to_pillows_whole_image_pixels(channels):
    pixels = photo(17_000, 400, channels)  # 8-row blocks: strips of 160 or 480 rows
    streamed = streamed_bytes(JpegRows, pixels, 37)
    assert b"\xff\xdd" in streamed and b"\xff\xd0" in streamed  # restart interval, marker
    decoded = np.asarray(Image.open(io.BytesIO(streamed)))
    assert np.array_equal(decoded, np.asarray(Image.open(io.BytesIO(pillow_bytes(pixels,
                                                                                   "JPEG")))))


def test_a_jpeg_of_one_strip_is_pillows_file():
    pixels = photo(120, 90, 3)
    assert streamed_bytes(JpegRows, pixels, 50) == pillow_bytes(pixels, "JPEG")


def test_restart_writes_the_file_anew(tmp_path):
    pixels = photo(64, 48, 3)
    with open(tmp_path / "a.png", "w+b") as file:
        rows = PngRows(file, 64, 48, 3, 95)
        rows.write(pixels[:20])
        rows.restart()
        rows.write(pixels)
        rows.finish()
    assert (tmp_path / "a.png").read_bytes() == pillow_bytes(pixels, "PNG")


def test_a_file_missing_rows_is_not_written(tmp_path):
    pixels = photo(64, 48, 3)
    with pytest.raises(ValueError, match="only 20 of the image's 48 rows"):
        write_rows(tmp_path / "a.tif", 64, 48, 3, lambda rows: rows.write(pixels[:20]))
    assert list(tmp_path.iterdir()) == []  # nor any temporary file


@pytest.mark.parametrize(("name", "size", "message"), [
    ("a.bmp", (10, 10), "a band at a time"),
    ("a.tif", (40_000, 40_000), "over 4 GB"),
    ("a.jpg", (70_000, 10), "65500 pixels"),
])
def test_what_cannot_be_streamed_is_refused_before_any_work(name, size, message):
    with pytest.raises(ValueError, match=message):
        check_rows(name, *size, 3)
