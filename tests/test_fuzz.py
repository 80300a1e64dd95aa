"""Damaged files never crash superres. A PNG, JPEG, WebP, TIFF, BMP or GIF with bits flipped,
bytes overwritten, inserted or deleted, or cut short either decodes or is refused with the
one-line `ImageReadError`; a damaged .safetensors or .pth given as `--weights` either loads or
is refused with a one-line ValueError (or WeightsNotFoundError). Each example is bounded in
time, so a hang fails the test instead of stalling it.

`SUPERRES_FUZZ_EXAMPLES` sets the examples per case (default 40: seconds in all);
`python benchmarks/fuzz.py` runs many more.
"""

from __future__ import annotations

import io
import os
import pickle
import signal
import struct
import tracemalloc
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from superres.image.io import ImageReadError, read_image
from superres.inference.upscaler import load
from superres.weights import ZOO, WeightsNotFoundError, read_checkpoint

EXAMPLES = int(os.environ.get("SUPERRES_FUZZ_EXAMPLES", "40"))
HANG_SECONDS = float(os.environ.get("SUPERRES_FUZZ_HANG_SECONDS", "20"))
# Decoding a header that claims a large image costs memory and time while proving nothing
# more; long runs (benchmarks/fuzz.py) use read_image's default limit.
MAX_PIXELS = int(os.environ.get("SUPERRES_FUZZ_MAX_PIXELS", str(2**22)))
FUZZ = settings(max_examples=EXAMPLES, deadline=timedelta(seconds=HANG_SECONDS / 4))


# ------------------------------------------------------------------------------- mutations


def _edits(size: int) -> st.SearchStrategy[list[tuple[str, int, bytes]]]:
    """Up to 6 edits of a file of `size` bytes, placed anywhere but more often where the
    structure is: the header at the start, a zip's directory at the end."""
    position = st.one_of(st.integers(0, min(size, 256) - 1), st.integers(0, size - 1),
                         st.integers(max(0, size - 256), size - 1))
    kind = st.sampled_from(("flip", "overwrite", "insert", "delete", "truncate"))
    return st.lists(st.tuples(kind, position, st.binary(min_size=1, max_size=8)),
                    min_size=1, max_size=6)


def _mutated(data: bytes, edits: list[tuple[str, int, bytes]]) -> bytes:
    """`data` after `edits`: flip one bit, overwrite or insert the bytes, delete as many,
    or cut the file short."""
    out = bytearray(data)
    for kind, position, payload in edits:
        if not out:
            break
        at = position % len(out)
        if kind == "flip":
            out[at] ^= 1 << (payload[0] % 8)
        elif kind == "overwrite":
            out[at : at + len(payload)] = payload
        elif kind == "insert":
            out[at:at] = payload
        elif kind == "delete":
            del out[at : at + len(payload)]
        else:
            del out[at:]
    return bytes(out)


class _Hang(BaseException):
    """Raised by the alarm: not an Exception, so no `except Exception` in the code under test
    can take it for a decoding error."""


@contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Interrupt the block after `seconds` of wall time (SIGALRM, main thread)."""

    def alarm(*_: Any) -> None:
        raise _Hang

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _outcome(call: Callable[[], Any], allowed: tuple[type[BaseException], ...]) -> Any:
    """What `call` returns, or the allowed error it raised (one line); a hang or any other
    exception fails the example."""
    try:
        with _time_limit(HANG_SECONDS), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # lost bits, extra frames: warned, and fine
            return call()
    except _Hang:
        raise AssertionError(f"still running after {HANG_SECONDS} s") from None
    except allowed as err:
        assert "\n" not in str(err), f"a multi-line error: {err!r}"
        return err


# ------------------------------------------------------------------------------- images


def _encoded(image: Image.Image, format: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def _image_seeds() -> dict[str, list[bytes]]:
    """Small valid files of each format, in the modes and codecs the readers branch on."""
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8))
    rgba = Image.fromarray(rng.integers(0, 256, (12, 16, 4), dtype=np.uint8))
    gray = rgb.convert("L")
    gray16 = Image.fromarray(rng.integers(0, 65536, (12, 16), dtype=np.uint16))
    palette = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate on reading
    second = rgb.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return {
        "png": [_encoded(rgb, "PNG"), _encoded(rgba, "PNG"), _encoded(gray16, "PNG"),
                _encoded(palette, "PNG", transparency=0)],
        "jpg": [_encoded(rgb, "JPEG"), _encoded(gray, "JPEG", progressive=True),
                _encoded(rgb.convert("CMYK"), "JPEG"), _encoded(rgb, "JPEG", exif=exif)],
        "webp": [_encoded(rgb, "WEBP", quality=80), _encoded(rgba, "WEBP", lossless=True)],
        "tif": [_encoded(rgb, "TIFF"), _encoded(rgba, "TIFF", compression="tiff_lzw"),
                _encoded(gray16, "TIFF", compression="tiff_adobe_deflate"),
                _encoded(rgb, "TIFF", save_all=True, append_images=[second])],
        "bmp": [_encoded(rgb, "BMP"), _encoded(gray, "BMP"), _encoded(palette, "BMP")],
        "gif": [_encoded(palette, "GIF"),
                _encoded(rgb, "GIF", save_all=True, append_images=[second], duration=50)],
    }


IMAGE_SEEDS = _image_seeds()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@pytest.mark.parametrize("suffix", list(IMAGE_SEEDS))
@FUZZ
@given(data=st.data())
def test_a_damaged_image_decodes_or_is_refused_in_one_line(suffix, folder, data):
    seed = data.draw(st.sampled_from(IMAGE_SEEDS[suffix]), label="seed")
    path = folder / f"damaged.{suffix}"
    path.write_bytes(_mutated(seed, data.draw(_edits(len(seed)), label="edits")))
    picture = _outcome(lambda: read_image(path, max_pixels=MAX_PIXELS), (ImageReadError,))
    if isinstance(picture, ImageReadError):
        assert picture.path == str(path)
    else:
        assert picture.height * picture.width <= MAX_PIXELS


@pytest.mark.parametrize("suffix", list(IMAGE_SEEDS))
def test_the_image_seeds_decode(suffix, folder):
    for index, seed in enumerate(IMAGE_SEEDS[suffix]):
        path = folder / f"intact{index}.{suffix}"
        path.write_bytes(seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the multi-frame seeds
            assert read_image(path).width in (12, 16)  # 12: the EXIF-rotated JPEG


# ------------------------------------------------------------------------------- weights


def _weights_seeds() -> dict[str, bytes]:
    """FSRCNN x2's shipped weights as safetensors, and as PyTorch files in both formats
    torch.save writes (zip since 1.6, and the legacy stream, which superres's own unpickler
    also reads when torch's refuses it)."""
    safetensors = (ZOO / "fsrcnn_x2.safetensors").read_bytes()
    state = read_checkpoint(ZOO / "fsrcnn_x2.safetensors")
    zipped, legacy = io.BytesIO(), io.BytesIO()
    torch.save(state, zipped)
    torch.save(state, legacy, _use_new_zipfile_serialization=False)
    return {"safetensors": safetensors, "pth": zipped.getvalue(), "pt": legacy.getvalue()}


WEIGHTS_SEEDS = _weights_seeds()
REFUSED = (ValueError, WeightsNotFoundError)


@pytest.fixture(scope="module")
def converted(folder: Path) -> Iterator[None]:
    """Checkpoints converted for `--weights` are cached under their digest: here, not in the
    user's cache."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SUPERRES_CONVERTED", str(folder / "converted"))
        yield


@pytest.mark.parametrize("suffix", list(WEIGHTS_SEEDS))
@FUZZ
@given(data=st.data())
def test_damaged_weights_are_read_or_refused_in_one_line(suffix, folder, data):
    seed = WEIGHTS_SEEDS[suffix]
    path = folder / f"damaged.{suffix}"
    path.write_bytes(_mutated(seed, data.draw(_edits(len(seed)), label="edits")))
    _outcome(lambda: read_checkpoint(path), REFUSED)


@pytest.mark.parametrize("suffix", ["safetensors", "pth"])
@FUZZ
@given(data=st.data())
def test_damaged_weights_given_to_a_model_load_or_are_refused_in_one_line(
    suffix, folder, converted, one_thread, data
):
    seed = WEIGHTS_SEEDS[suffix]
    path = folder / f"weights.{suffix}"
    path.write_bytes(_mutated(seed, data.draw(_edits(len(seed)), label="edits")))
    _outcome(lambda: load("fsrcnn", 2, weights=path), REFUSED)  # the path of --weights


@pytest.mark.parametrize("suffix", list(WEIGHTS_SEEDS))
def test_the_weights_seeds_are_read_whole(suffix, folder):
    path = folder / f"intact.{suffix}"
    path.write_bytes(WEIGHTS_SEEDS[suffix])
    state = read_checkpoint(path)
    assert state.keys() == read_checkpoint(ZOO / "fsrcnn_x2.safetensors").keys()


def test_a_damaged_memo_index_in_a_legacy_checkpoint_costs_no_memory(folder):
    """Found by fuzzing: a pickle naming memo slot n made the C unpickler behind the reading
    of whole pickled models allocate and zero n slots (a flipped byte of a 54 kB legacy .pt
    gave n = 1.2e9: 9 GB and over a minute)."""
    header = b"".join(pickle.dumps(value, protocol=2) for value in (
        torch.serialization.MAGIC_NUMBER, torch.serialization.PROTOCOL_VERSION,
        {"little_endian": True}))
    # PROTO 2, GLOBAL vdsr.Net (a whole-model class: torch's reader refuses it, so superres's
    # own unpickler reads the file), LONG_BINPUT 2**25, STOP
    body = b"\x80\x02cvdsr\nNet\nr" + struct.pack("<I", 2**25) + b"."
    path = folder / "memo.pt"
    path.write_bytes(header + body + pickle.dumps([], protocol=2))
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="not a state dict"):
            read_checkpoint(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 * 2**20  # 2**25 slots of 8 bytes would be 256 MB and more
