"""Download, check and install the registered image sets as flat PNG folders.

A set is built in a hidden temporary folder next to its final place and renamed into place only
once every file has been checked, so an interrupted or failed download never leaves a
half-filled ``<root>/<Name>`` behind. Each set ends up as ``<root>/<Name>/*.png`` plus a
``MANIFEST.sha256`` in ``sha256sum`` format.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path, PurePosixPath
from typing import IO

from superres.data.registry import (
    MANIFEST_FILE,
    ArchiveSource,
    DatasetSpec,
    FileSource,
    Manifest,
    data_root,
    get_dataset,
    load_manifest,
    pixel_digest,
    sha256sum_text,
    verify_folder,
)
from superres.files import IMAGE_SUFFIXES, list_images

_CHUNK = 1 << 20
_TIMEOUT_S = 60
_USER_AGENT = "superres-dataset-downloader"


class DownloadError(OSError):
    """A set could not be fetched or installed; nothing was left in its final folder.

    An OSError, like the network errors behind most failures, so callers catch one family.
    """


class ChecksumError(DownloadError):
    """A downloaded file does not match its published digest."""

    def __init__(self, file: str, expected: str, actual: str, kind: str = "sha256") -> None:
        super().__init__(f"checksum mismatch for {file}: expected {kind} {expected}, got {actual}")
        self.file = file
        self.expected = expected
        self.actual = actual
        self.kind = kind


class UnsafeArchiveError(DownloadError):
    """An archive member would land outside the extraction folder (absolute path or ``..``)."""


def download_dataset(
    name: str, root: Path | None = None, *, progress: bool = True, force: bool = False
) -> Path:
    """Fetch a registered set into ``root/<Name>`` (default: ``data_root()``) and return it.

    A folder that is already there and verifies is returned as is. One that does not verify is
    left alone unless ``force`` is true, in which case it is replaced once the new copy is ready.
    """
    return install_dataset(get_dataset(name), root, progress=progress, force=force)


def install_dataset(
    spec: DatasetSpec,
    root: Path | None = None,
    *,
    progress: bool = True,
    force: bool = False,
    manifest: Manifest | None = None,
) -> Path:
    """The code path behind ``download_dataset``, taking any spec (tests point it at local URLs).

    ``manifest`` defaults to the one shipped for ``spec.name``; per-file sources need one.
    """
    root = Path(root) if root is not None else data_root()
    dest = root / spec.name
    if spec.source is None:
        raise DownloadError(
            f"{spec.name} cannot be downloaded automatically. {spec.how_to_get(root)}"
        )
    if manifest is None:
        manifest = _shipped_manifest(spec.name)
    if dest.exists() and any(dest.iterdir()):
        report = verify_folder(spec.name, dest, manifest, spec.images)
        if report.ok:
            return dest
        if not force:
            raise FileExistsError(
                f"{dest} exists but does not verify ({report.summary()}); remove it or pass "
                "force=True to replace it"
            )
    root.mkdir(parents=True, exist_ok=True)
    with _staging_folder(root, spec.name) as staging:
        if isinstance(spec.source, FileSource):
            if manifest is None:
                raise DownloadError(f"{spec.name}: a per-file source needs a manifest")
            _fetch_files(spec, spec.source, manifest, staging, progress)
        else:
            _fetch_archive(spec, spec.source, staging, progress)
        names = [p.name for p in list_images(staging)]
        if len(names) != spec.images:
            raise DownloadError(f"{spec.name}: expected {spec.images} images, got {len(names)}")
        (staging / MANIFEST_FILE).write_text(sha256sum_text(staging, names))
        _move_into_place(staging, dest)
    return dest


def _shipped_manifest(name: str) -> Manifest | None:
    try:
        return load_manifest(name)
    except KeyError:  # not a registered name: a spec built by the caller
        return None


@contextmanager
def _staging_folder(root: Path, name: str) -> Iterator[Path]:
    """A hidden folder next to the destination (same file system, so the final rename is atomic),
    removed on any failure, Ctrl-C included."""
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.partial-", dir=root))
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _move_into_place(staging: Path, dest: Path) -> None:
    """Rename the finished folder into place; an old (empty or replaced) copy is swapped out
    first and deleted only after the rename succeeded."""
    old = None
    if dest.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old-", dir=dest.parent))
        old.rmdir()
        dest.rename(old)
    try:
        staging.rename(dest)
    except BaseException:
        if old is not None:
            old.rename(dest)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# ----------------------------------------------------------------------------- fetching


def fetch_file(url: str, out: Path, progress: bool = False) -> str:
    """Stream ``url`` (https, or file:// in tests) into ``out`` and return the sha256 of what
    was written, for the caller to check against a published digest (weights files)."""
    return _fetch(url, out, progress=progress)


def _fetch(url: str, out: Path, algorithm: str = "sha256", progress: bool = False) -> str:
    """Stream ``url`` into ``out`` and return the digest of what was written."""
    # Imported here so that `import superres.data` stays cheap.
    import urllib.error
    import urllib.request

    from tqdm import tqdm

    h = hashlib.new(algorithm)
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response, open(out, "wb") as f:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(
                total=total,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=PurePosixPath(url).name,
                disable=not progress,
                leave=False,
            ) as bar:
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    f.write(chunk)
                    h.update(chunk)
                    bar.update(len(chunk))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise DownloadError(f"could not fetch {url}: {exc}") from exc
    return h.hexdigest()


def _fetch_files(
    spec: DatasetSpec, source: FileSource, manifest: Manifest, staging: Path, progress: bool
) -> None:
    """Download each manifest entry, check it, and store it as PNG in ``staging``."""
    from PIL import Image
    from tqdm import tqdm

    downloads = staging / ".download"
    downloads.mkdir()
    for file_name in tqdm(sorted(manifest), desc=spec.name, unit="file", disable=not progress):
        entry = manifest[file_name]
        stem = PurePosixPath(file_name).stem
        url = source.url_for(stem)
        tmp = downloads / (stem + PurePosixPath(url).suffix)
        sha = _fetch(url, tmp)
        out = staging / f"{stem}.png"
        if source.verify == "sha256" and sha == entry["sha256"]:
            tmp.replace(out)
            continue
        # verify="pixels", or a sha256 source whose bytes differ: the decoded pixels decide.
        is_png = False
        try:
            with Image.open(tmp) as im:
                im.load()
                actual = pixel_digest(im)
                is_png = im.format == "PNG"
                if actual == entry["pixels"] and not is_png:
                    im.save(out, format="PNG")
        except (OSError, SyntaxError, ValueError) as exc:
            actual = f"an undecodable file ({exc})"
        if actual != entry["pixels"]:
            if source.verify == "sha256":
                raise ChecksumError(f"{file_name} ({url})", entry["sha256"], sha)
            raise ChecksumError(f"{file_name} ({url})", entry["pixels"], actual, "pixel digest")
        if is_png:
            tmp.replace(out)  # keep the original PNG bytes
        tmp.unlink(missing_ok=True)
    downloads.rmdir()


def _fetch_archive(spec: DatasetSpec, source: ArchiveSource, staging: Path, progress: bool) -> None:
    """Download the archive, check its digest, then copy the images of ``member_dir`` out flat."""
    archive = staging / (".archive-" + PurePosixPath(source.url).name)
    actual = _fetch(source.url, archive, source.algorithm, progress)
    if actual != source.digest:
        raise ChecksumError(source.url, source.digest, actual, source.algorithm)
    with closing(_archive_members(archive, source.member_dir)) as members:
        for name, reader in members:
            _store_image(name, reader, staging)
    archive.unlink()


def _check_member_name(name: str) -> PurePosixPath:
    """Reject names that would escape the extraction folder, whatever ``member_dir`` is."""
    normalized = name.replace("\\", "/")
    path = PurePosixPath(normalized)
    if path.is_absolute() or (len(normalized) > 1 and normalized[1] == ":"):
        raise UnsafeArchiveError(f"archive member has an absolute path: {name!r}")
    if ".." in path.parts:
        raise UnsafeArchiveError(f"archive member leaves the extraction folder: {name!r}")
    return path


def _in_member_dir(path: PurePosixPath, member_dir: str) -> bool:
    base = PurePosixPath(member_dir.strip("/"))
    return path.parent == base and path.suffix.lower() in IMAGE_SUFFIXES


def _archive_members(archive: Path, member_dir: str) -> Iterator[tuple[str, IO[bytes]]]:
    """Yield (file name, reader) for the images directly inside ``member_dir``.

    Every member name is checked before anything is read, so one bad entry rejects the archive.
    Nothing is extracted with the archive's own paths: images are copied by base name only.
    """
    with open(archive, "rb") as f:
        is_zip = f.read(4) in (b"PK\x03\x04", b"PK\x05\x06")
    if is_zip:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            paths = [_check_member_name(i.filename) for i in infos]
            for info, path in zip(infos, paths, strict=True):
                if info.is_dir() or not _in_member_dir(path, member_dir):
                    continue
                if (info.external_attr >> 16) & 0o170000 == 0o120000:
                    raise UnsafeArchiveError(
                        f"archive member is a symbolic link: {info.filename!r}"
                    )
                with zf.open(info) as reader:
                    yield path.name, reader
        return
    if not tarfile.is_tarfile(archive):
        raise DownloadError(f"{archive.name} is neither a zip nor a tar archive")
    with tarfile.open(archive, "r:*") as tf:
        members = tf.getmembers()
        paths = [_check_member_name(m.name) for m in members]
        for member, path in zip(members, paths, strict=True):
            if not _in_member_dir(path, member_dir):
                continue
            if not member.isfile():
                raise UnsafeArchiveError(f"archive member is not a regular file: {member.name!r}")
            reader = tf.extractfile(member)
            assert reader is not None  # regular files always have a reader
            with reader:
                yield path.name, reader


def _store_image(name: str, reader: IO[bytes], staging: Path) -> None:
    """Write one image as ``<stem>.png``: PNGs byte for byte, other formats decoded by Pillow."""
    from PIL import Image

    stem, suffix = PurePosixPath(name).stem, PurePosixPath(name).suffix.lower()
    out = staging / f"{stem}.png"
    if out.exists():
        raise DownloadError(f"two archive members would both become {out.name}")
    if suffix == ".png":
        with open(out, "wb") as f:
            shutil.copyfileobj(reader, f, _CHUNK)
        return
    # Pillow may seek, which zip and tar member streams do not all support.
    with Image.open(io.BytesIO(reader.read())) as im:
        im.load()
        im.save(out, format="PNG")


__all__ = [
    "ChecksumError",
    "DownloadError",
    "UnsafeArchiveError",
    "download_dataset",
    "install_dataset",
]
