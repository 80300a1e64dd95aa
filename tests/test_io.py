"""Tests for superres.image.io: what goes in comes out, and every bad file is named, not
crashed on."""

from __future__ import annotations

import pickle
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from superres.image.io import (
    DEFAULT_MAX_PIXELS,
    IMAGE_SUFFIXES,
    ImageReadError,
    Picture,
    collect_inputs,
    from_pil,
    read_image,
    to_pil,
    write_image,
)

RNG = np.random.default_rng(1234)


def noise(height: int, width: int, channels: int, dtype: type = np.uint8) -> np.ndarray:
    high = np.iinfo(dtype).max + 1
    return RNG.integers(0, high, (height, width, channels), dtype=dtype)


def picture(channels: int, alpha: bool, dtype: type = np.uint8) -> Picture:
    pixels = noise(12, 16, channels, dtype)
    return Picture(pixels, noise(12, 16, 1, dtype)[..., 0] if alpha else None)


def smooth_rgb(height: int = 32, width: int = 48) -> np.ndarray:
    """A gradient: JPEG keeps it close, unlike noise."""
    y, x = np.mgrid[0:height, 0:width]
    return np.dstack((x * 5, y * 7, x * 2 + y * 3)).astype(np.uint8)


def png_bytes(
    width: int, height: int, rows: bytes = b"", bit_depth: int = 8, colour: int = 0
) -> bytes:
    """A PNG written by hand, so the header can say what Pillow would never write."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def assert_same(a: Picture, b: Picture) -> None:
    assert a.pixels.dtype == b.pixels.dtype
    np.testing.assert_array_equal(a.pixels, b.pixels)
    if a.alpha is None:
        assert b.alpha is None
    else:
        assert b.alpha is not None
        np.testing.assert_array_equal(a.alpha, b.alpha)


# --- round trips -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("suffix", "channels", "alpha"),
    [
        (".png", 1, False),
        (".png", 3, False),
        (".png", 1, True),
        (".png", 3, True),
        (".tif", 1, False),
        (".tiff", 3, False),
        (".tif", 1, True),
        (".tif", 3, True),
        (".bmp", 1, False),
        (".bmp", 3, False),
        (".webp", 3, False),
        (".webp", 3, True),
    ],
)
def test_lossless_formats_give_back_every_value(
    tmp_path: Path, suffix: str, channels: int, alpha: bool
) -> None:
    original = picture(channels, alpha)
    # quality 100 makes WebP lossless; the other formats ignore it.
    path = write_image(tmp_path / f"image{suffix}", original, quality=100)
    decoded = read_image(path)
    assert_same(original, decoded)
    assert decoded.source == str(path)


def test_webp_has_no_gray_mode_so_gray_comes_back_as_three_equal_channels(tmp_path: Path) -> None:
    original = picture(1, alpha=False)
    decoded = read_image(write_image(tmp_path / "gray.webp", original, quality=100))
    assert decoded.channels == 3
    for channel in range(3):
        np.testing.assert_array_equal(decoded.pixels[..., channel], original.pixels[..., 0])


@pytest.mark.parametrize("channels", [1, 3])
def test_jpeg_keeps_shape_and_channels_and_stays_close(tmp_path: Path, channels: int) -> None:
    pixels = np.ascontiguousarray(smooth_rgb()[..., :channels])
    decoded = read_image(write_image(tmp_path / "image.jpg", Picture(pixels, None)))
    assert decoded.pixels.shape == pixels.shape
    assert decoded.format == "JPEG"
    assert np.abs(decoded.pixels.astype(int) - pixels).mean() < 2


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16_bit_gray_keeps_all_16_bits(tmp_path: Path, suffix: str) -> None:
    original = picture(1, alpha=False, dtype=np.uint16)
    decoded = read_image(write_image(tmp_path / f"deep{suffix}", original))
    assert decoded.bit_depth == 16
    assert_same(original, decoded)


def test_big_endian_16_bit_tiff_reads_as_native_uint16(tmp_path: Path) -> None:
    values = noise(6, 5, 1, np.uint16)[..., 0]
    Image.fromarray(values.astype(">u2")).save(tmp_path / "big.tif")
    decoded = read_image(tmp_path / "big.tif")
    assert decoded.pixels.dtype == np.dtype(np.uint16)  # native byte order
    np.testing.assert_array_equal(decoded.pixels[..., 0], values)


@pytest.mark.parametrize("suffix", [".jpg", ".webp", ".bmp"])
def test_16_bit_gray_in_an_8_bit_format_is_rounded_with_a_warning(
    tmp_path: Path, suffix: str
) -> None:
    pixels = np.array([[[0], [257], [65535], [32896]]], dtype=np.uint16)
    with pytest.warns(UserWarning, match="8-bit"):
        path = write_image(tmp_path / f"deep{suffix}", Picture(pixels, None), quality=100)
    decoded = read_image(path)
    assert decoded.bit_depth == 8
    if suffix != ".jpg":
        np.testing.assert_array_equal(decoded.pixels[..., 0], [[0, 1, 255, 128]])


def test_16_bit_rgb_is_written_as_8_bit_with_a_warning_because_pillow_cannot(
    tmp_path: Path,
) -> None:
    original = picture(3, alpha=True, dtype=np.uint16)
    with pytest.warns(UserWarning, match="16-bit"):
        path = write_image(tmp_path / "deep.png", original)
    decoded = read_image(path)
    assert decoded.bit_depth == 8
    expected = np.round(original.pixels / 257).astype(np.uint8)
    np.testing.assert_array_equal(decoded.pixels, expected)


def test_48_bit_png_is_read_as_8_bit_with_a_warning(tmp_path: Path) -> None:
    values = noise(3, 4, 3, np.uint16)
    rows = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in values)
    path = tmp_path / "rgb48.png"
    path.write_bytes(png_bytes(4, 3, rows, bit_depth=16, colour=2))
    with pytest.warns(UserWarning, match="16-bit samples decoded as 8-bit"):
        decoded = read_image(path)
    # Pillow keeps the high byte of each sample.
    np.testing.assert_array_equal(decoded.pixels, (values >> 8).astype(np.uint8))


def test_alpha_is_dropped_with_a_warning_where_the_format_has_none(tmp_path: Path) -> None:
    original = picture(3, alpha=True)
    for suffix in (".jpg", ".bmp"):
        with pytest.warns(UserWarning, match="alpha dropped"):
            path = write_image(tmp_path / f"image{suffix}", original)
        assert not read_image(path).has_alpha


# --- modes -------------------------------------------------------------------------------


def test_1_bit_images_become_gray_0_or_255(tmp_path: Path) -> None:
    bits = noise(5, 7, 1)[..., 0] > 127
    Image.fromarray(bits).save(tmp_path / "bits.png")
    decoded = read_image(tmp_path / "bits.png")
    assert decoded.pixels.dtype == np.uint8
    np.testing.assert_array_equal(decoded.pixels[..., 0], np.where(bits, 255, 0))


def test_palette_with_transparency_becomes_rgb_plus_alpha(tmp_path: Path) -> None:
    image = Image.new("P", (4, 2))
    image.putpalette([10, 20, 30, 200, 100, 50])
    image.putpixel((1, 0), 1)
    image.save(tmp_path / "palette.png", transparency=0)
    decoded = read_image(tmp_path / "palette.png")
    assert decoded.channels == 3
    assert decoded.alpha is not None
    np.testing.assert_array_equal(decoded.alpha, [[0, 255, 0, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(decoded.pixels[0, 1], [200, 100, 50])


def test_palette_without_transparency_becomes_plain_rgb(tmp_path: Path) -> None:
    Image.new("P", (4, 2)).save(tmp_path / "palette.png")
    decoded = read_image(tmp_path / "palette.png")
    assert (decoded.channels, decoded.has_alpha) == (3, False)


def test_cmyk_jpeg_becomes_rgb(tmp_path: Path) -> None:
    Image.new("CMYK", (8, 6), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg")  # red
    decoded = read_image(tmp_path / "cmyk.jpg")
    assert decoded.pixels.shape == (6, 8, 3)
    np.testing.assert_allclose(decoded.pixels[3, 4], [255, 0, 0], atol=3)


@pytest.mark.parametrize("mode", ["YCbCr", "LAB", "HSV", "RGBX", "La", "PA", "I;16B", "I;16L"])
def test_other_pillow_modes_convert_to_gray_or_rgb(mode: str) -> None:
    image = Image.new(mode, (5, 3))
    decoded = from_pil(image)
    assert decoded.pixels.shape[:2] == (3, 5)
    assert decoded.channels in (1, 3)
    assert decoded.has_alpha == (mode in ("La", "PA"))


def test_32_bit_integer_images_become_uint16_when_the_values_fit(tmp_path: Path) -> None:
    values = np.array([[0, 1, 40000, 65535]], dtype=np.int32)
    Image.fromarray(values).save(tmp_path / "int.tif")
    decoded = read_image(tmp_path / "int.tif")
    assert decoded.pixels.dtype == np.uint16
    np.testing.assert_array_equal(decoded.pixels[..., 0], values)


def test_pixels_and_alpha_are_c_contiguous_and_writable(tmp_path: Path) -> None:
    path = write_image(tmp_path / "image.png", picture(3, alpha=True))
    decoded = read_image(path)
    for array in (decoded.pixels, decoded.alpha):
        assert array is not None
        assert array.flags.c_contiguous
        assert array.flags.writeable


@pytest.mark.parametrize(("orientation", "red_half"), [(6, "top"), (8, "bottom")])
def test_exif_orientation_is_applied(tmp_path: Path, orientation: int, red_half: str) -> None:
    stored = np.zeros((20, 40, 3), np.uint8)
    stored[:, :20] = (255, 0, 0)  # left half red, right half black
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(stored).save(tmp_path / "phone.jpg", exif=exif)
    decoded = read_image(tmp_path / "phone.jpg")
    assert decoded.pixels.shape == (40, 20, 3)  # turned a quarter
    top, bottom = decoded.pixels[:20, :, 0].mean(), decoded.pixels[20:, :, 0].mean()
    assert (top > bottom) == (red_half == "top")


def test_to_pil_and_from_pil_are_inverse_for_8_bit_and_16_bit_gray() -> None:
    for original in (
        picture(1, alpha=False),
        picture(1, alpha=True),
        picture(3, alpha=False),
        picture(3, alpha=True),
        picture(1, alpha=False, dtype=np.uint16),
    ):
        assert_same(original, from_pil(to_pil(original)))


def test_to_pil_rounds_16_bit_rgb_to_8_bit_as_pillow_has_no_16_bit_rgb_mode() -> None:
    deep = picture(3, alpha=False, dtype=np.uint16)
    image = to_pil(deep)
    assert image.mode == "RGB"
    np.testing.assert_array_equal(np.array(image), np.round(deep.pixels / 257).astype(np.uint8))


# --- Picture and ImageReadError ----------------------------------------------------------


def test_picture_reports_its_geometry() -> None:
    deep = picture(1, alpha=True, dtype=np.uint16)
    assert (deep.height, deep.width, deep.channels) == (12, 16, 1)
    assert deep.bit_depth == 16
    assert deep.has_alpha
    assert picture(3, alpha=False).bit_depth == 8


@pytest.mark.parametrize(
    ("pixels", "alpha"),
    [
        (np.zeros((4, 4), np.uint8), None),  # no channel axis
        (np.zeros((4, 4, 4), np.uint8), None),  # alpha smuggled in as a 4th channel
        (np.zeros((4, 4, 3), np.float32), None),
        (np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5), np.uint8)),
        (np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.uint16)),
    ],
)
def test_a_malformed_picture_is_refused(pixels: np.ndarray, alpha: np.ndarray | None) -> None:
    with pytest.raises(ValueError):
        Picture(pixels, alpha)


def test_an_image_read_error_survives_pickling_for_worker_processes() -> None:
    error = pickle.loads(pickle.dumps(ImageReadError("a/b.png", "no such file")))
    assert (error.path, error.reason) == ("a/b.png", "no such file")
    assert str(error) == "a/b.png: no such file"


def test_an_image_read_error_message_is_one_line_even_for_a_multi_line_reason() -> None:
    assert str(ImageReadError("x.png", "broken\n  header")) == "x.png: broken header"


# --- bad inputs --------------------------------------------------------------------------


def _missing(tmp_path: Path) -> Path:
    return tmp_path / "missing.png"


def _directory(tmp_path: Path) -> Path:
    (tmp_path / "folder.png").mkdir()
    return tmp_path / "folder.png"


def _empty(tmp_path: Path) -> Path:
    (tmp_path / "empty.png").touch()
    return tmp_path / "empty.png"


def _text(tmp_path: Path) -> Path:
    (tmp_path / "notes.png").write_text("not a picture\n")
    return tmp_path / "notes.png"


def _truncated(suffix: str) -> Callable[[Path], Path]:
    def make(tmp_path: Path) -> Path:
        path = tmp_path / f"cut{suffix}"
        Image.fromarray(noise(64, 64, 3)).save(path)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        return path

    return make


def _zero_width(tmp_path: Path) -> Path:
    (tmp_path / "zero.png").write_bytes(png_bytes(0, 8))
    return tmp_path / "zero.png"


def _huge_header(tmp_path: Path) -> Path:
    # 100000 x 100000 claimed in a file of ~60 bytes: past even Pillow's own hard limit.
    (tmp_path / "bomb.png").write_bytes(png_bytes(100_000, 100_000))
    return tmp_path / "bomb.png"


def _over_default_limit(tmp_path: Path) -> Path:
    side = int(DEFAULT_MAX_PIXELS**0.5) + 1
    (tmp_path / "big.png").write_bytes(png_bytes(side, side))
    return tmp_path / "big.png"


def _float(tmp_path: Path) -> Path:
    Image.fromarray(np.ones((4, 4), np.float32)).save(tmp_path / "float.tif")
    return tmp_path / "float.tif"


def _wide_integers(tmp_path: Path) -> Path:
    Image.fromarray(np.array([[-1, 70000]], np.int32)).save(tmp_path / "wide.tif")
    return tmp_path / "wide.tif"


@pytest.mark.filterwarnings("error")  # no Pillow warning leaks out either
@pytest.mark.parametrize(
    ("make", "reason"),
    [
        pytest.param(_missing, "no such file", id="missing"),
        pytest.param(_directory, "is a folder", id="directory"),
        pytest.param(_empty, "empty file", id="empty"),
        pytest.param(_text, "not an image Pillow can read", id="text"),
        pytest.param(_truncated(".png"), "truncated", id="truncated-png"),
        pytest.param(_truncated(".jpg"), "truncated", id="truncated-jpeg"),
        # Pillow already refuses a 0-wide header when it identifies the file.
        pytest.param(_zero_width, "not an image Pillow can read", id="zero-width"),
        pytest.param(_huge_header, "decompression-bomb", id="bomb-header"),
        pytest.param(_over_default_limit, "decompression-bomb", id="over-default-limit"),
        pytest.param(_float, "float images are not supported", id="float"),
        pytest.param(_wide_integers, "do not fit 16 bits", id="wide-integers"),
    ],
)
def test_a_bad_input_is_reported_in_one_line_naming_the_file(
    tmp_path: Path, make: Callable[[Path], Path], reason: str
) -> None:
    path = make(tmp_path)
    with pytest.raises(ImageReadError) as caught:
        read_image(path)
    message = str(caught.value)
    assert "\n" not in message
    assert path.name in message
    assert reason in message
    assert caught.value.path == str(path)


def test_max_pixels_is_checked_from_the_header(tmp_path: Path) -> None:
    path = write_image(tmp_path / "small.png", picture(3, alpha=False))  # 16 x 12
    assert read_image(path, max_pixels=16 * 12).width == 16
    with pytest.raises(ImageReadError, match="over the limit of 100"):
        read_image(path, max_pixels=100)


def test_an_empty_in_memory_image_is_refused() -> None:
    with pytest.raises(ImageReadError, match="zero width or height"):
        from_pil(Image.new("L", (0, 5)))


# --- writing -----------------------------------------------------------------------------


def test_write_creates_folders_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "out" / "deeper" / "image.png"
    assert write_image(target, picture(3, alpha=True)) == target
    assert list(target.parent.iterdir()) == [target]


def test_write_replaces_an_existing_image(tmp_path: Path) -> None:
    target = tmp_path / "image.png"
    write_image(target, picture(1, alpha=False))
    second = picture(3, alpha=False)
    write_image(target, second)
    assert_same(second, read_image(target))
    assert list(tmp_path.iterdir()) == [target]


def test_a_write_that_fails_half_way_leaves_the_old_image_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "image.png"
    write_image(target, picture(3, alpha=False))
    before = target.read_bytes()

    def save_then_die(self: Image.Image, file: object, *args: object, **kwargs: object) -> None:
        file.write(b"\x89PNG half")  # type: ignore[attr-defined]
        raise KeyboardInterrupt

    monkeypatch.setattr(Image.Image, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        write_image(target, picture(3, alpha=False))
    assert target.read_bytes() == before
    assert list(tmp_path.iterdir()) == [target]


@pytest.mark.parametrize("name", ["image.gif", "image.xyz", "image"])
def test_write_refuses_an_unknown_suffix_and_names_it(tmp_path: Path, name: str) -> None:
    suffix = Path(name).suffix
    with pytest.raises(ValueError, match=f"unknown image suffix '{suffix}'"):
        write_image(tmp_path / name, picture(3, alpha=False))
    assert list(tmp_path.iterdir()) == []


def test_write_refuses_a_quality_out_of_range(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="quality"):
        write_image(tmp_path / "image.jpg", picture(3, alpha=False), quality=0)


# --- collecting inputs -------------------------------------------------------------------


@pytest.fixture
def images(tmp_path: Path) -> Path:
    """A folder: three images (one upper-case suffix), a text file, a hidden and a sub-folder."""
    for name in ("b.png", "a.jpg", "c.TIFF", "notes.txt", ".hidden.png", "sub/d.png"):
        path = tmp_path / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"")  # collect_inputs does not open the files
    return tmp_path


def test_collect_keeps_named_files_in_order_once_each(images: Path) -> None:
    b, a = str(images / "b.png"), str(images / "a.jpg")
    paths, errors = collect_inputs([b, a, b, str(images / "sub" / ".." / "b.png")])
    assert paths == [Path(b), Path(a)]
    assert errors == []


def test_collect_takes_a_folders_images_sorted_and_not_recursively(images: Path) -> None:
    with pytest.warns(UserWarning, match=r"skipped 1 file\(s\)"):  # notes.txt
        paths, errors = collect_inputs([str(images)])
    assert [p.name for p in paths] == ["a.jpg", "b.png", "c.TIFF"]
    assert errors == []


def test_collect_expands_glob_patterns(images: Path) -> None:
    paths, _ = collect_inputs([str(images / "*.png"), str(images / "**" / "?.png")])
    assert paths == [images / "b.png", images / "sub" / "d.png"]


def test_collect_reports_inputs_that_match_nothing_and_carries_on(images: Path) -> None:
    (images / "empty").mkdir()
    missing, empty, no_match = (
        str(images / "missing.png"),
        str(images / "empty"),
        str(images / "*.gif"),
    )
    paths, errors = collect_inputs([missing, str(images / "a.jpg"), empty, no_match])
    assert paths == [images / "a.jpg"]
    assert [e.path for e in errors] == [missing, empty, no_match]
    assert all("\n" not in str(e) for e in errors)
    assert "no such file" in errors[0].reason


def test_collect_takes_every_format_pillow_reads_and_counts_what_it_skips(tmp_path: Path) -> None:
    for name in ("a.png", "b.gif", "c.ico", "d.TGA", "notes.txt", "more.txt", "data.json",
                 "README", ".hidden.gif"):
        (tmp_path / name).write_bytes(b"")
    with pytest.warns(UserWarning, match=r"skipped 4 file\(s\) whose suffix names no image "
                                         r"format Pillow reads \(2 \.txt, 1 \.json, 1 no suffix\)"):
        paths, errors = collect_inputs([str(tmp_path)])
    assert [p.name for p in paths] == ["a.png", "b.gif", "c.ico", "d.TGA"] and errors == []
    with pytest.warns(UserWarning, match=r"skipped 2 file\(s\).*\(2 \.txt\)"):
        paths, _ = collect_inputs([str(tmp_path / "[bmn]*")])
    assert [p.name for p in paths] == ["b.gif"]


def test_collect_takes_a_file_with_glob_characters_in_its_name_literally(tmp_path: Path) -> None:
    path = tmp_path / "frame[1].png"
    path.touch()
    assert collect_inputs([str(path)]) == ([path], [])


def test_collect_refuses_a_bare_string_instead_of_a_list(images: Path) -> None:
    with pytest.raises(TypeError):
        collect_inputs(str(images / "a.jpg"))


def test_every_suffix_collected_can_also_be_written(tmp_path: Path) -> None:
    original = picture(3, alpha=False)
    for suffix in IMAGE_SUFFIXES:
        decoded = read_image(write_image(tmp_path / f"x{suffix}", original))
        assert decoded.pixels.shape == original.pixels.shape
