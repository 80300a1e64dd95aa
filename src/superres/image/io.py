"""Reading and writing images for super-resolution: one checked way in, one atomic way out.

Everything that can go wrong with an input file becomes an ImageReadError with a one-line
message naming the file, so a batch run can report it and carry on with the next image.
"""

from __future__ import annotations

import glob
import os
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from superres.files import IMAGE_SUFFIXES, atomic_write

# Limit on width * height, checked from the header before any pixel is decoded: a tiny
# compressed file can claim a size that takes gigabytes to decode. 2**27 (~134 MP) is 400 MB
# as 8-bit RGB and 1.6 GB as the float32 tensor a model sees, already a lot for an SR input.
# It also sits below Pillow's own hard limit (2 * Image.MAX_IMAGE_PIXELS, ~179 MP by default),
# so with the default it is this check, with its clearer message, that fires first.
DEFAULT_MAX_PIXELS: int = 2**27

# Pillow format written for each suffix.
_WRITE_FORMATS: dict[str, str] = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WEBP",
    ".ppm": "PPM",
    ".pgm": "PPM",
}
_ALPHA_FORMATS = frozenset({"PNG", "TIFF", "WEBP"})
# Formats Pillow writes with 16 bits per sample; only for grayscale without alpha (mode I;16).
_SIXTEEN_BIT_FORMATS = frozenset({"PNG", "TIFF"})

_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N"})
# Mode each 8-bit Pillow mode is converted to before it becomes an array.
_EIGHT_BIT_TARGETS: dict[str, str] = {
    "1": "L",
    "L": "L",
    "LA": "LA",
    "La": "LA",
    "P": "RGB",
    "PA": "RGBA",
    "RGB": "RGB",
    "RGBA": "RGBA",
    "RGBa": "RGBA",
    "RGBX": "RGB",
    "CMYK": "RGB",
    "YCbCr": "RGB",
    "LAB": "RGB",
    "HSV": "RGB",
}


class ImageReadError(ValueError):
    """An input image that cannot be used. str(err) is ONE line: '<path>: <reason>'.

    A ValueError rather than an OSError so that callers can tell "this file is bad" apart
    from trouble with the machine; it carries the path so batch reports can name the file.
    """

    path: str
    reason: str

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = os.fspath(path)
        self.reason = " ".join(reason.split())  # Pillow messages may hold newlines
        super().__init__(f"{self.path}: {self.reason}")

    def __reduce__(self) -> tuple[type[ImageReadError], tuple[str, str]]:
        # Batch workers send errors between processes; the default pickling would call
        # ImageReadError(message) and fail for want of the second argument.
        return type(self), (self.path, self.reason)


# eq=False: arrays have no single truth value, so field-wise == would raise; compare by identity.
@dataclass(frozen=True, eq=False)
class Picture:
    """A decoded image, ready for SR: colour channels and alpha kept apart.

    SR models upscale colour; alpha is upscaled separately (or not at all), so it never rides
    along as a fourth channel. pixels is H x W x C with C 1 (gray) or 3 (RGB), uint8 or uint16;
    alpha is H x W with the same dtype, or None.
    """

    pixels: np.ndarray
    alpha: np.ndarray | None
    source: str | None = None
    format: str | None = None

    def __post_init__(self) -> None:
        pixels, alpha = self.pixels, self.alpha
        if pixels.ndim != 3 or pixels.shape[2] not in (1, 3):
            raise ValueError(f"pixels must be H x W x 1 or H x W x 3, not {pixels.shape}")
        if pixels.dtype not in (np.uint8, np.uint16):
            raise ValueError(f"pixels must be uint8 or uint16, not {pixels.dtype}")
        if alpha is not None and (alpha.shape != pixels.shape[:2] or alpha.dtype != pixels.dtype):
            raise ValueError(
                f"alpha must be {pixels.shape[:2]} {pixels.dtype} like the pixels, "
                f"not {alpha.shape} {alpha.dtype}"
            )

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def channels(self) -> int:
        return int(self.pixels.shape[2])

    @property
    def bit_depth(self) -> int:
        """8 or 16: bits per sample."""
        return self.pixels.dtype.itemsize * 8

    @property
    def has_alpha(self) -> bool:
        return self.alpha is not None


def read_image(path: str | os.PathLike[str], *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Picture:
    """Decode one image file fully, upright (EXIF orientation applied), as a Picture.

    Every problem with the file is raised as ImageReadError, never as a raw Pillow error, so
    a batch can report the file and go on. The whole image is decoded here, so a truncated
    file fails now instead of yielding a half-grey picture. Only the first frame of animated
    or multi-page files is read, with a warning. Pillow decodes 16-bit colour and 16-bit
    gray+alpha (48-bit RGB PNG, 16-bit RGB TIFF, ...) to 8 bits; that loss is reported with a
    warning too. 16-bit gray without alpha is kept. Pillow's own size limit
    (2 * Image.MAX_IMAGE_PIXELS) still applies, so a max_pixels above it needs that raised
    too.
    """
    source = os.fspath(path)
    _check_is_nonempty_file(Path(source))
    try:
        with warnings.catch_warnings():
            # Pillow warns above Image.MAX_IMAGE_PIXELS; max_pixels below is the limit we keep.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(source) as image:
                pixel_count = image.width * image.height
                if pixel_count > max_pixels:
                    raise ImageReadError(
                        source,
                        f"image is {image.width}x{image.height} = {pixel_count} pixels, over "
                        f"the limit of {max_pixels} (decompression-bomb guard)",
                    )
                drops_bits = _decodes_16_bit_colour_to_8(image)
                frames = getattr(image, "n_frames", 1)
                image.load()
                ImageOps.exif_transpose(image, in_place=True)
    except ImageReadError:
        raise
    except Image.DecompressionBombError as err:
        raise ImageReadError(source, f"image too large (decompression-bomb guard): {err}") from err
    except UnidentifiedImageError as err:
        raise ImageReadError(source, "not an image Pillow can read") from err
    except Exception as err:
        # Pillow reports corrupt or truncated data with many exception types (OSError,
        # SyntaxError, ValueError, EOFError, struct.error, ...): all mean "cannot decode".
        raise ImageReadError(source, f"cannot read image: {err}") from err
    if drops_bits:
        warnings.warn(
            f"{source}: 16-bit samples decoded as 8-bit (Pillow keeps 16 bits only for gray "
            "without alpha)",
            stacklevel=2,
        )
    if frames > 1:
        warnings.warn(f"{source}: {frames} frames or pages; only the first is read",
                      stacklevel=2)
    return from_pil(image, source)


def from_pil(image: Image.Image, source: str | None = None) -> Picture:
    """Convert a loaded Pillow image to a Picture, splitting off alpha.

    Colour spaces (CMYK, YCbCr, LAB, HSV) and palettes become RGB; a palette or colour key
    with transparency becomes alpha. 16-bit gray stays uint16, and mode I is accepted when
    its values fit 0..65535. Float images (mode F) are refused: no SR range to map them to.
    """
    name = source if source is not None else "<in-memory image>"
    if image.width == 0 or image.height == 0:
        raise ImageReadError(name, f"image has zero width or height ({image.width}x{image.height})")
    samples = _samples(image, name)
    has_alpha = samples.shape[2] in (2, 4)
    colour = samples.shape[2] - 1 if has_alpha else samples.shape[2]
    return Picture(
        pixels=np.ascontiguousarray(samples[..., :colour]),
        alpha=np.ascontiguousarray(samples[..., colour]) if has_alpha else None,
        source=source,
        format=image.format,
    )


def to_pil(picture: Picture) -> Image.Image:
    """Convert a Picture to a Pillow image (L, LA, RGB, RGBA or I;16).

    Lossy for 16-bit pictures with colour or alpha: Pillow has no 16-bit RGB or 16-bit
    gray+alpha mode, so those come back rounded to 8 bits. 16-bit gray stays I;16.
    """
    if picture.bit_depth == 16 and (picture.channels == 3 or picture.has_alpha):
        picture = _to_8_bit(picture)
    samples = picture.pixels
    if picture.alpha is not None:
        samples = np.dstack((samples, picture.alpha))
    if samples.shape[2] == 1:
        samples = samples[..., 0]
    return Image.fromarray(np.ascontiguousarray(samples))


def write_image(
    path: str | os.PathLike[str], picture: Picture | Image.Image, *, quality: int = 95
) -> Path:
    """Write picture in the format its suffix names; atomically, creating parent folders.

    The file is written to a temporary name in the same folder and then renamed over the
    target, so an interrupted run never leaves a half-written image behind. What the format
    cannot hold is dropped with a warning: alpha in JPEG/BMP, 16 bits in anything but gray
    PNG/TIFF (Pillow cannot write 16-bit RGB or 16-bit gray+alpha). quality applies to JPEG
    and WebP; WebP at quality 100 is written lossless. An 8-bit gray or RGB Pillow image is
    written as it is, without the copy a Picture needs (for a large upscaled photo, that
    copy would be the biggest allocation of the run).
    """
    if isinstance(picture, Image.Image) and picture.mode not in ("L", "RGB"):
        picture = from_pil(picture)
    target = Path(path)
    image_format = _WRITE_FORMATS.get(target.suffix.lower())
    if image_format is None:
        raise ValueError(
            f"cannot write {target}: unknown image suffix {target.suffix!r} "
            f"(use one of {', '.join(sorted(_WRITE_FORMATS))})"
        )
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be 1..100, not {quality}")
    if isinstance(picture, Image.Image):
        image = picture
    else:
        image = to_pil(_writable(picture, target, image_format))
    options: dict[str, Any] = {}
    if image_format == "JPEG":
        # subsampling=0 keeps full-resolution chroma: upscaled detail is the point of SR.
        options = {"quality": quality, "subsampling": 0}
    elif image_format == "WEBP":
        # exact=True keeps the colour under transparent pixels, which upscaling blends in.
        options = {"quality": quality, "lossless": quality == 100, "exact": True}

    atomic_write(target, lambda file: image.save(file, format=image_format, **options))
    return target


def _writable(picture: Picture, target: Path, image_format: str) -> Picture:
    """The picture without what `image_format` cannot hold, with a warning for each loss."""
    if picture.has_alpha and image_format not in _ALPHA_FORMATS:
        warnings.warn(f"{target}: {image_format} has no alpha; alpha dropped", stacklevel=3)
        picture = replace(picture, alpha=None)
    if picture.bit_depth == 16 and not (
        image_format in _SIXTEEN_BIT_FORMATS and picture.channels == 1 and not picture.has_alpha
    ):
        warnings.warn(
            f"{target}: Pillow cannot write this 16-bit image as {image_format}; written as 8-bit",
            stacklevel=3,
        )
        picture = _to_8_bit(picture)
    return picture


@cache
def readable_suffixes() -> frozenset[str]:
    """The suffixes of every format Pillow opens: IMAGE_SUFFIXES, which superres also writes,
    and the others (GIF, ICO, TGA, PSD, ...), whose results are written as PNG."""
    registered = Image.registered_extensions()  # imports Pillow's plugins once
    return IMAGE_SUFFIXES | {suffix for suffix, name in registered.items() if name in Image.OPEN}


def collect_inputs(inputs: Sequence[str]) -> tuple[list[Path], list[ImageReadError]]:
    """Expand files, folders and glob patterns into the image files to process.

    A folder gives its files in formats Pillow reads (by `readable_suffixes`, not recursive,
    hidden files left out); a pattern with *, ? or [ gives the such files it matches (**
    recurses). The other files a folder or pattern holds are skipped with a warning that
    counts them by suffix, so none goes missing silently. Each input's matches are sorted;
    inputs keep their order and a file named twice is kept once. An input that matches
    nothing is returned as an error, not raised, so a batch can go on with the rest and
    report it at the end.
    """
    if isinstance(inputs, str):  # a str is a Sequence[str] too, of one-letter "paths"
        raise TypeError("collect_inputs takes a list of inputs, not a single string")
    paths: list[Path] = []
    errors: list[ImageReadError] = []
    seen: set[Path] = set()
    for item in inputs:
        found = _expand(item)
        if isinstance(found, ImageReadError):
            errors.append(found)
            continue
        for path in found:
            key = path.resolve()
            if key not in seen:
                seen.add(key)
                paths.append(path)
    return paths, errors


def _check_is_nonempty_file(path: Path) -> None:
    """Name the common ways a path is not an image before Pillow gives a vaguer message."""
    if path.is_dir():
        raise ImageReadError(path, "is a folder, not an image file")
    if not path.exists():
        raise ImageReadError(path, "no such file")
    if path.stat().st_size == 0:
        raise ImageReadError(path, "empty file (0 bytes)")


def _decodes_16_bit_colour_to_8(image: Image.Image) -> bool:
    """Whether Pillow is about to decode 16-bit samples into an 8-bit mode.

    Only the raw mode of the not-yet-decoded tiles (e.g. 'RGB;16B') tells, so call it before
    load(). Modes I;16 and I hold 16 bits, so only 8-bit modes count.
    """
    return image.mode in _EIGHT_BIT_TARGETS and any(";16" in str(args) for *_, args in image.tile)


def _samples(image: Image.Image, name: str) -> np.ndarray:
    """All samples of image as H x W x (C + alpha), uint8 or uint16 in native byte order."""
    mode = image.mode
    if mode in _SIXTEEN_BIT_MODES:
        return np.array(image).astype(np.uint16)[..., np.newaxis]
    if mode == "I":
        values = np.array(image)
        low, high = int(values.min()), int(values.max())
        if low < 0 or high > 65535:
            raise ImageReadError(
                name, f"32-bit integer values {low}..{high} do not fit 16 bits (0..65535)"
            )
        return values.astype(np.uint16)[..., np.newaxis]
    if mode == "F":
        raise ImageReadError(name, "32-bit float images are not supported")
    target = _EIGHT_BIT_TARGETS.get(mode)
    if target is None:
        raise ImageReadError(name, f"unsupported image mode {mode!r}")
    if target in ("L", "RGB") and _has_transparency(image):
        target += "A"
    samples = np.array(image if mode == target else image.convert(target))
    return samples if samples.ndim == 3 else samples[..., np.newaxis]


def _has_transparency(image: Image.Image) -> bool:
    """Palette transparency or a transparent colour key (PNG tRNS, GIF)."""
    return "transparency" in image.info or (
        image.mode == "P" and image.palette is not None and image.palette.mode == "RGBA"
    )


def _to_8_bit(picture: Picture) -> Picture:
    """The 16-bit picture with its samples rounded to 8 bits."""
    alpha = None if picture.alpha is None else _round_to_8_bit(picture.alpha)
    return replace(picture, pixels=_round_to_8_bit(picture.pixels), alpha=alpha)


def _round_to_8_bit(samples: np.ndarray) -> np.ndarray:
    """v / 257 rounded, so that 0 -> 0 and 65535 -> 255 exactly."""
    return ((samples.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def _expand(item: str) -> list[Path] | ImageReadError:
    """The files one input names, or the error saying it names none."""
    path = Path(item)
    if path.is_file():
        return [path]  # named explicitly: read_image will say if it is not an image
    if path.is_dir():
        files = [p for p in path.iterdir() if p.is_file()]
        reason = "folder holds no image files"
    elif any(char in item for char in "*?["):
        files = [Path(p) for p in glob.glob(item, recursive=True) if Path(p).is_file()]
        reason = "pattern matches no image files"
    else:
        return ImageReadError(item, "no such file or folder")
    files = [p for p in files if not p.name.startswith(".")]
    found = [p for p in files if p.suffix.lower() in readable_suffixes()]
    skipped = Counter(p.suffix.lower() or "no suffix" for p in files
                      if p.suffix.lower() not in readable_suffixes())
    if skipped:
        kinds = ", ".join(f"{count} {suffix}" for suffix, count in
                          sorted(skipped.items(), key=lambda kind: (-kind[1], kind[0])))
        warnings.warn(f"{item}: skipped {skipped.total()} file(s) whose suffix names no image "
                      f"format Pillow reads ({kinds})", stacklevel=3)
    return sorted(found) if found else ImageReadError(item, reason)



__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_SUFFIXES",
    "ImageReadError",
    "Picture",
    "collect_inputs",
    "from_pil",
    "read_image",
    "readable_suffixes",
    "to_pil",
    "write_image",
]
