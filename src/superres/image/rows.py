"""Image files written a band of rows at a time, so that an image far larger than memory can
be encoded while it is being computed: PNG, TIFF and JPEG, 8-bit gray or RGB.

Each writer gives the bytes Pillow gives for the whole image where it can, so that streaming
a large output changes nothing in the file: PNG is filtered as Pillow filters it (per row,
the filter whose output has the least sum of absolute values, tried in Pillow's order) and
deflated with Pillow's zlib settings and IDAT chunk size; TIFF is Pillow's uncompressed
single-strip layout. JPEG cannot be encoded in pieces by Pillow, so each strip of whole
8-row blocks is encoded alone, with the same tables, and the strips are joined with restart
markers: a restart resets exactly what starting a new image resets (the DC predictions), so
the file decodes to the very pixels Pillow's whole-image JPEG decodes to.
"""

from __future__ import annotations

import struct
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from io import BytesIO
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image

from superres.files import atomic_write

# Suffixes whose format is written a band at a time (the others need the whole image).
ROW_FORMATS: dict[str, str] = {
    ".png": "PNG", ".tif": "TIFF", ".tiff": "TIFF", ".jpg": "JPEG", ".jpeg": "JPEG",
}
_FILTER_BYTES = 1 << 20  # PNG rows filtered at a time, in bytes: numpy temporaries stay small
_JPEG_STRIP_BYTES = 1 << 23  # pixels of one JPEG strip, at most
_JPEG_MAX_SIDE = 65_500  # libjpeg's limit on either side
_SOF0, _SOS, _DRI, _RST0, _EOI = 0xC0, 0xDA, 0xDD, 0xD0, b"\xff\xd9"


class RowWriter(ABC):
    """Takes an image's rows top to bottom, any number at a time, and encodes them into
    `file`. `restart` empties the file to write the image anew (after a run ran out of
    memory); `finish` completes the file once every row was written."""

    def __init__(self, file: BinaryIO, width: int, height: int, channels: int,
                 quality: int) -> None:
        self.file, self.width, self.height, self.channels = file, width, height, channels
        self.quality = quality
        self.rows = 0
        self._begin()

    def write(self, rows: np.ndarray) -> None:
        """Encode the next rows, h x width x channels uint8 (or h x width for gray)."""
        rows = rows.reshape(rows.shape[0], self.width * self.channels)
        if self.rows + rows.shape[0] > self.height:
            raise ValueError(f"more than the image's {self.height} rows written")
        self._encode(rows)
        self.rows += rows.shape[0]

    def restart(self) -> None:
        self.file.seek(0)
        self.file.truncate()
        self.rows = 0
        self._begin()

    def finish(self) -> None:
        if self.rows != self.height:
            raise ValueError(f"only {self.rows} of the image's {self.height} rows written")
        self._end()

    @abstractmethod
    def _begin(self) -> None:
        """Write what precedes the pixels and set up the encoder."""

    @abstractmethod
    def _encode(self, rows: np.ndarray) -> None:
        """Encode rows, h x (width * channels)."""

    @abstractmethod
    def _end(self) -> None:
        """Write what follows the pixels."""


class PngRows(RowWriter):
    """PNG with Pillow's filters, zlib settings and IDAT chunks: the same bytes."""

    def _begin(self) -> None:
        self.file.write(b"\x89PNG\r\n\x1a\n")
        colour_type = 2 if self.channels == 3 else 0
        self._chunk(b"IHDR", struct.pack(">IIBBBBB", self.width, self.height, 8, colour_type,
                                         0, 0, 0))
        # Pillow's: default level, 32K window, memLevel 9, the strategy for filtered data.
        self._deflate = zlib.compressobj(6, zlib.DEFLATED, 15, 9, zlib.Z_FILTERED)
        self._prior = np.zeros(self.width * self.channels, np.uint8)
        self._pending = bytearray()
        self._idat = max(65536, self.width * 4)  # Pillow's buffer: every IDAT but the last

    def _encode(self, rows: np.ndarray) -> None:
        step = max(1, _FILTER_BYTES // rows.shape[1])
        for top in range(0, rows.shape[0], step):
            block = rows[top : top + step]
            self._pending += self._deflate.compress(png_filter(block, self._prior,
                                                               self.channels))
            self._prior = block[-1].copy()
            self._flush_idat(final=False)

    def _end(self) -> None:
        self._pending += self._deflate.flush()
        self._flush_idat(final=True)
        self._chunk(b"IEND", b"")

    def _flush_idat(self, final: bool) -> None:
        whole = len(self._pending) - len(self._pending) % self._idat
        for start in range(0, whole, self._idat):
            self._chunk(b"IDAT", self._pending[start : start + self._idat])
        del self._pending[:whole]
        if final and self._pending:
            self._chunk(b"IDAT", self._pending)

    def _chunk(self, kind: bytes, data: bytes | bytearray) -> None:
        self.file.write(struct.pack(">I", len(data)) + kind)
        self.file.write(data)
        self.file.write(struct.pack(">I", zlib.crc32(data, zlib.crc32(kind))))


def png_filter(rows: np.ndarray, prior: np.ndarray, bpp: int) -> np.ndarray:
    """The PNG scanlines of `rows` (h x bytes, uint8; `prior` is the row above the first):
    each row filtered by None, Up, Sub or Paeth, whichever has the least sum of absolute
    values (bytes as signed), the first of them in that order on a tie, as Pillow chooses."""
    height, length = rows.shape
    x = rows.astype(np.int16)
    up = np.empty_like(x)
    up[0], up[1:] = prior, x[:-1]
    left, corner = np.zeros_like(x), np.zeros_like(x)
    left[:, bpp:], corner[:, bpp:] = x[:, :-bpp], up[:, :-bpp]
    pa, pb, pc = np.abs(up - corner), np.abs(left - corner), np.abs(left + up - 2 * corner)
    paeth = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, corner))
    filtered = np.stack([x, x - up, x - left, x - paeth]).astype(np.uint8)  # modulo 256
    cost = np.abs(filtered.view(np.int8).astype(np.int32)).sum(axis=2)
    choice = cost.argmin(axis=0)
    lines = np.empty((height, length + 1), np.uint8)
    lines[:, 0] = np.array([0, 2, 1, 4], np.uint8)[choice]  # None, Up, Sub, Paeth
    lines[:, 1:] = filtered[choice, np.arange(height)]
    return lines


class TiffRows(RowWriter):
    """Uncompressed TIFF in one strip, laid out as Pillow lays it out: the same bytes."""

    def _begin(self) -> None:
        rgb = self.channels == 3
        tags = 10 if rgb else 9
        ifd_end = 8 + 2 + 12 * tags + 4
        data = ifd_end + (6 if rgb else 0)  # after RGB's three BitsPerSample values
        entries = [
            (256, 4, 1, self.width), (257, 4, 1, self.height),
            (258, 3, 3, ifd_end) if rgb else (258, 3, 1, 8),
            (259, 3, 1, 1),  # no compression
            (262, 3, 1, 2 if rgb else 1),  # RGB, or gray with black at 0
            (273, 4, 1, data),
            *([(277, 3, 1, 3)] if rgb else []),
            (278, 4, 1, self.height), (279, 4, 1, self._size()),
            (284, 3, 1, 1),  # samples interleaved
        ]
        header = bytearray(b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", tags))
        for tag, kind, count, value in entries:
            inline = "<HHIH2x" if kind == 3 and count == 1 else "<HHII"
            header += struct.pack(inline, tag, kind, count, value)
        header += struct.pack("<I", 0)
        if rgb:
            header += struct.pack("<3H", 8, 8, 8)
        self.file.write(header)

    def _size(self) -> int:
        return self.width * self.height * self.channels

    def _encode(self, rows: np.ndarray) -> None:
        self.file.write(np.ascontiguousarray(rows).data)

    def _end(self) -> None:
        """Nothing follows the strip."""


class JpegRows(RowWriter):
    """Baseline JPEG (4:4:4, Pillow's tables for `quality`) from strips that Pillow encodes
    one at a time, joined by restart markers: it decodes to Pillow's whole-image pixels."""

    def _begin(self) -> None:
        blocks = -(-self.width // 8)  # 8 x 8 blocks (MCUs at 4:4:4) in a row of blocks
        by_size = _JPEG_STRIP_BYTES // (self.width * self.channels * 8)
        # The restart interval counts MCUs, at most 65535: one strip of block rows.
        self._strip = 8 * max(1, min(by_size, 65535 // blocks))
        self._interval = self._strip // 8 * blocks
        self._band = np.empty((self._strip, self.width * self.channels), np.uint8)
        self._filled = 0
        self._strips = 0
        self._header = b""

    def _encode(self, rows: np.ndarray) -> None:
        while len(rows):
            take = min(len(rows), self._strip - self._filled)
            self._band[self._filled : self._filled + take] = rows[:take]
            self._filled += take
            rows = rows[take:]
            if self._filled == self._strip:
                self._encode_strip()

    def _end(self) -> None:
        if self._filled:
            self._encode_strip()
        self.file.write(_EOI)

    def _encode_strip(self) -> None:
        pixels = self._band[: self._filled].reshape(self._filled, self.width, self.channels)
        image = Image.fromarray(pixels[..., 0] if self.channels == 1 else pixels)
        encoded = BytesIO()
        image.save(encoded, "JPEG", quality=self.quality, subsampling=0)
        data = encoded.getvalue()
        header, start = _jpeg_header(data)
        if not self._header:
            self._header = header
            self.file.write(self._joined_header(header))
        elif header != self._header:  # same settings give the same tables; if not, say so
            raise RuntimeError("JPEG strips were encoded with different tables")
        if self._strips:
            self.file.write(bytes([0xFF, _RST0 + (self._strips - 1) % 8]))
        self.file.write(data[start : -len(_EOI)])
        self._strips += 1
        self._filled = 0

    def _joined_header(self, header: bytes) -> bytes:
        """The first strip's header with the whole image's height and, if there are more
        strips, a restart interval of one strip (DRI) before its scan (one strip is then
        byte for byte Pillow's file)."""
        joined = bytearray(header)
        segments = dict(_jpeg_segments(header))
        struct.pack_into(">H", joined, segments[_SOF0] + 5, self.height)
        if self.height <= self._strip:
            return bytes(joined)
        sos = segments[_SOS]
        restart = bytes([0xFF, _DRI]) + struct.pack(">HH", 4, self._interval)
        return bytes(joined[:sos] + restart + joined[sos:])


def _jpeg_segments(data: bytes) -> list[tuple[int, int]]:
    """(marker, offset) of each marker segment after SOI, up to and including SOS."""
    found, at = [], 2
    while True:
        if data[at] != 0xFF:
            raise ValueError("not a JPEG marker segment")
        marker = data[at + 1]
        found.append((marker, at))
        if marker == _SOS:
            return found
        at += 2 + struct.unpack(">H", data[at + 2 : at + 4])[0]


def _jpeg_header(data: bytes) -> tuple[bytes, int]:
    """A strip's header up to its entropy-coded data, with the height zeroed so that strips
    compare equal, and the offset where that data starts."""
    segments = dict(_jpeg_segments(data))
    if _SOF0 not in segments:
        raise ValueError("expected a baseline JPEG")
    start = segments[_SOS] + 2 + struct.unpack(">H", data[segments[_SOS] + 2 :
                                                          segments[_SOS] + 4])[0]
    header = bytearray(data[:start])
    struct.pack_into(">H", header, segments[_SOF0] + 5, 0)
    return bytes(header), start


_WRITERS: dict[str, type[RowWriter]] = {"PNG": PngRows, "TIFF": TiffRows, "JPEG": JpegRows}


def check_rows(path: str | Path, width: int, height: int, channels: int,
               quality: int = 95) -> None:
    """Raise ValueError, before any work, if `path` cannot be written a band at a time: a
    format other than PNG, TIFF or JPEG, or an image over the format's limit."""
    image_format = ROW_FORMATS.get(Path(path).suffix.lower())
    if image_format is None:
        raise ValueError(f"{path}: only {', '.join(sorted(ROW_FORMATS))} are written a band "
                         "at a time")
    if channels not in (1, 3):
        raise ValueError(f"expected 1 (gray) or 3 (RGB) channels, not {channels}")
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be 1..100, not {quality}")
    if image_format == "TIFF" and width * height * channels >= 2**32:
        raise ValueError(f"{path}: {width}x{height} is over 4 GB, more than a TIFF file can "
                         "hold; write PNG")
    if image_format == "JPEG" and max(width, height) > _JPEG_MAX_SIDE:
        raise ValueError(f"{path}: {width}x{height} is over JPEG's {_JPEG_MAX_SIDE} pixels a "
                         "side; write PNG")


def write_rows(path: str | Path, width: int, height: int, channels: int,
               fill: Callable[[RowWriter], None], *, quality: int = 95) -> Path:
    """Write an image that `fill` hands to a RowWriter row by row, in the format the suffix
    names, atomically: into a hidden temporary file beside `path`, renamed over it only when
    complete, so an interrupted run never leaves part of an image under the final name."""
    check_rows(path, width, height, channels, quality)
    writer = _WRITERS[ROW_FORMATS[Path(path).suffix.lower()]]

    def write(file: BinaryIO) -> None:
        rows = writer(file, width, height, channels, quality)
        fill(rows)
        rows.finish()

    return atomic_write(Path(path), write)
