"""Tests for superres.data: registry, verification, manifests and the download code path.

Nothing here touches the internet: downloads are served from file:// URLs or from an HTTP server
on 127.0.0.1. Tests marked as needing the real sets read them from $SUPERRES_DATA and are skipped
when it is unset or lacks the set.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from superres.data import (
    ArchiveSource,
    ChecksumError,
    DatasetNotFoundError,
    DatasetSpec,
    DownloadError,
    FileSource,
    UnsafeArchiveError,
    build_manifest,
    data_root,
    dataset_images,
    download_dataset,
    get_dataset,
    install_dataset,
    list_datasets,
    load_manifest,
    pixel_digest,
    verify_dataset,
    write_manifest,
)
from superres.data.registry import MANIFEST_DIR, verify_folder

SHARED = os.environ.get("SUPERRES_DATA", "")
SHIPPED = ["Set5", "Set14", "BSD100", "T91", "BSD200"]
# sha256 of each set's published `sha256sum *.png` listing (its MANIFEST.sha256 file).
PUBLISHED_LISTING_SHA256 = {
    "Set5": "1c4ccea521aeac3f6ae2de0efccc7025f6c8542c14f0ffb2021135a1c1469df5",
    "Set14": "62289bd8d47c1361acfcf72b468a0057e33f87372fe17714fd2675bbf46bbe3a",
    "BSD100": "350a01d1ab826430752c408251e252903ff27fb48d10011027d42b2c601bda2f",
    "T91": "3b10778408dccb3fba6d5eba56bacc9c3cce66bd9a07efaa0e3b8b01f3f08ba7",
    "BSD200": "15f52985a017dab49a6c94f18ad577521f3374944a05af4d14ba2d9b901e1a71",
}


def real_set(name: str) -> Path:
    """The real copy of a set under $SUPERRES_DATA, or skip the test saying why."""
    if not SHARED:
        pytest.skip("SUPERRES_DATA is not set; point it at a folder holding the real image sets")
    folder = Path(SHARED) / name
    if not folder.is_dir():
        pytest.skip(f"SUPERRES_DATA ({SHARED}) has no {name} folder")
    return folder


def make_image(path: Path, seed: int, mode: str = "RGB", size: tuple[int, int] = (23, 17)) -> Path:
    """A small random image; the format follows the suffix."""
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(path)
    return path


def toy_spec(source: FileSource | ArchiveSource, images: int, name: str = "Toy") -> DatasetSpec:
    return DatasetSpec(name, (), "eval", images, "A toy set for tests.", source)


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


@pytest.fixture
def http_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, str]]:
    """A folder served by http.server on 127.0.0.1, and its base URL."""
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    served = tmp_path / "served"
    served.mkdir()

    class QuietHandler(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(served))
    )
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield served, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# ----------------------------------------------------------------------------- registry


def test_lookup_ignores_case_and_accepts_aliases() -> None:
    assert get_dataset("set5").name == "Set5"
    assert get_dataset("SET14").name == "Set14"
    assert get_dataset("b100").name == "BSD100"
    assert get_dataset("BSDS100").name == "BSD100"
    assert get_dataset(" urban100 ").name == "Urban100"
    assert get_dataset("div2k_valid_hr").name == "DIV2K-valid"
    assert get_dataset("DIV2K-train").name == "DIV2K"


def test_unknown_name_lists_known_sets() -> None:
    with pytest.raises(KeyError) as info:
        get_dataset("Set6")
    message = str(info.value)
    assert "Set6" in message
    for name in ("Set5", "BSD100", "Urban100", "Manga109", "General100", "DIV2K"):
        assert name in message


def test_registry_contents() -> None:
    specs = {s.name: s for s in list_datasets()}
    expected = {
        "Set5": ("eval", 5),
        "Set14": ("eval", 14),
        "BSD100": ("eval", 100),
        "Urban100": ("eval", 100),
        "Manga109": ("eval", 109),
        "T91": ("train", 91),
        "General100": ("train", 100),
        "BSD200": ("train", 200),
        "DIV2K": ("train", 800),
        "DIV2K-valid": ("eval", 100),
        "FaceHelen50": ("eval", 50),
        "FaceCelebA1000": ("eval", 1000),
        "FaceTrain": ("train", 1152),
        "Middlebury2005": ("eval", 6),
        "Vid4": ("eval", 171),
    }
    assert {n: (s.role, s.images) for n, s in specs.items()} == expected
    all_names = [n.casefold() for s in specs.values() for n in s.names]
    assert len(all_names) == len(set(all_names)), "an alias is used twice"
    for spec in specs.values():
        assert spec.description and "\n" not in spec.description
        assert (spec.source is None) == bool(spec.manual)

    per_file = {n: s.source for n, s in specs.items() if isinstance(s.source, FileSource)}
    assert sorted(per_file) == sorted(SHIPPED)
    github = "https://raw.githubusercontent.com/"
    assert per_file["Set5"].url_for("baby") == (
        f"{github}majedelhelou/denoising_datasets/"
        "58234876fef6f1b56306705c78dfd40cdb837b86/CSet5/baby.png"
    )
    assert per_file["Set14"].url_for("ppt3").endswith("/CSet14/ppt3.png")
    assert per_file["BSD100"].url_for("101085") == (
        f"{github}Zheng222/IDN-Caffe/"
        "482c601336000f5c00b0e93f83a525f0fc917830/test/test_data/B100/101085.jpg"
    )
    dcscn = f"{github}jiny2001/dcscn-super-resolution/d382bc30d41c94ac72f8cb148d61cc4864b3b380/"
    assert per_file["T91"].url_for("t1") == dcscn + "data/yang91/t1.bmp"
    assert per_file["BSD200"].url_for("2092") == dcscn + "data/bsd200/2092.png"
    assert (per_file["Set5"].verify, per_file["BSD100"].verify) == ("sha256", "pixels")
    urban = specs["Urban100"].source
    assert isinstance(urban, ArchiveSource)
    assert urban.checksum == "md5:4ace41d33c2384b97e6b320cd0afd6ba"
    assert urban.member_dir == "benchmark/Urban100/HR/"
    div2k, div2k_valid = specs["DIV2K"].source, specs["DIV2K-valid"].source
    assert isinstance(div2k, ArchiveSource) and isinstance(div2k_valid, ArchiveSource)
    assert div2k.url == "http://data.vision.ee.ethz.ch/cvl/DIV2K/DIV2K_train_HR.zip"
    assert div2k.checksum == "md5:bdc2d9338d4e574fe81bf7d158758658"
    assert div2k_valid.checksum == "md5:9fcdda83005c5e5997799b69f955ff88"
    assert "manga109.org" in specs["Manga109"].manual
    assert "mmlab.ie.cuhk.edu.hk/projects/FSRCNN.html" in specs["General100"].manual


@pytest.mark.parametrize("checksum", ["crc32:1234", "md5:XYZ", "md5:" + "a" * 31, "sha256:"])
def test_archive_source_rejects_bad_checksums(checksum: str) -> None:
    with pytest.raises(ValueError, match="checksum"):
        ArchiveSource("https://example.invalid/a.tar", checksum, "a/")


def test_archive_source_accepts_md5_and_sha256() -> None:
    assert ArchiveSource("u", "md5:" + "0" * 32, "a/").algorithm == "md5"
    assert ArchiveSource("u", "sha256:" + "f" * 64, "a/").algorithm == "sha256"


def test_data_root_honours_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPERRES_DATA", str(tmp_path / "data"))
    assert data_root() == tmp_path / "data"
    monkeypatch.delenv("SUPERRES_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert data_root() == tmp_path / "cache" / "superres" / "datasets"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data_root() == tmp_path / "home" / ".cache" / "superres" / "datasets"


def test_dataset_images_by_name_alias_and_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    set5 = tmp_path / "Set5"
    set5.mkdir()
    paths = [make_image(set5 / f"{n}.png", i) for i, n in enumerate(["woman", "baby", "bird"])]
    (set5 / "MANIFEST.sha256").write_text("")
    (set5 / ".hidden.png").write_bytes(b"")
    name, images = dataset_images("set5", root=tmp_path)
    assert name == "Set5"
    assert images == sorted(paths)

    monkeypatch.setenv("SUPERRES_DATA", str(tmp_path))
    assert dataset_images("Set5") == ("Set5", sorted(paths))

    b100 = tmp_path / "B100"  # a folder named after an alias
    b100.mkdir()
    make_image(b100 / "3096.png", 7)
    assert dataset_images("BSD100") == ("BSD100", [b100 / "3096.png"])

    mine = tmp_path / "mine"
    mine.mkdir()
    make_image(mine / "b.bmp", 1)
    make_image(mine / "a.png", 2)
    (mine / "notes.txt").write_text("not an image")
    assert dataset_images(mine) == ("mine", [mine / "a.png", mine / "b.bmp"])
    assert dataset_images(str(mine)) == ("mine", [mine / "a.png", mine / "b.bmp"])


def test_missing_sets_say_where_and_how(tmp_path: Path) -> None:
    (tmp_path / "Urban100").mkdir()  # present but empty counts as missing
    with pytest.raises(DatasetNotFoundError) as info:
        dataset_images("Urban100", root=tmp_path)
    message = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    assert str(tmp_path / "Urban100") in message
    assert "`superres datasets download Urban100`" in message

    with pytest.raises(DatasetNotFoundError, match=r"manga109\.org"):
        dataset_images("manga109", root=tmp_path)
    with pytest.raises(DatasetNotFoundError, match=r"projects/FSRCNN\.html"):
        dataset_images("General100", root=tmp_path)
    with pytest.raises(DatasetNotFoundError, match="neither a folder nor a registered"):
        dataset_images(str(tmp_path / "nowhere"))
    with pytest.raises(DatasetNotFoundError, match="no images"):
        dataset_images(tmp_path / "Urban100")
    with pytest.raises(DatasetNotFoundError):
        verify_dataset("Set14", root=tmp_path)


# ----------------------------------------------------------------------------- manifests


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_manifest_matches_published_listing(name: str) -> None:
    doc = json.loads((MANIFEST_DIR / f"{name}.json").read_text())
    assert doc["dataset"] == name
    assert len(doc["files"]) == get_dataset(name).images
    listing = "".join(f"{e['sha256']}  {f}\n" for f, e in sorted(doc["files"].items()))
    assert hashlib.sha256(listing.encode()).hexdigest() == PUBLISHED_LISTING_SHA256[name]
    assert doc["sha256sum_digest"] == PUBLISHED_LISTING_SHA256[name]
    assert load_manifest(name.lower()) == doc["files"]


def test_no_manifest_for_unshipped_sets() -> None:
    for name in ("Urban100", "Manga109", "General100", "DIV2K", "DIV2K-valid"):
        assert load_manifest(name) is None


def test_manifest_generator(tmp_path: Path) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    make_image(folder / "a.png", 1)
    make_image(folder / "g.png", 2, mode="L")
    manifest = build_manifest(folder)
    assert sorted(manifest) == ["a.png", "g.png"]
    with Image.open(folder / "a.png") as im:
        raw = im.tobytes()
    assert manifest["a.png"]["pixels"] == hashlib.sha256(b"RGB 23x17\n" + raw).hexdigest()
    file_sha = hashlib.sha256((folder / "a.png").read_bytes()).hexdigest()
    assert manifest["a.png"]["sha256"] == file_sha
    with pytest.raises(ValueError, match="expected 5 images"):
        write_manifest("Set5", folder, out_dir=tmp_path / "out")


def test_generator_reproduces_shipped_manifest(tmp_path: Path) -> None:
    out = write_manifest("Set5", real_set("Set5"), out_dir=tmp_path)
    assert json.loads(out.read_text()) == json.loads((MANIFEST_DIR / "Set5.json").read_text())


# ----------------------------------------------------------------------------- verification


@pytest.mark.parametrize("name", SHIPPED)
def test_real_sets_verify(name: str) -> None:
    real_set(name)
    report = verify_dataset(name)
    assert report.ok, report.summary()
    assert report.checked == get_dataset(name).images
    assert "\n" not in report.summary()
    listing = (Path(SHARED) / name / "MANIFEST.sha256").read_bytes()
    assert hashlib.sha256(listing).hexdigest() == PUBLISHED_LISTING_SHA256[name]
    assert len(dataset_images(name)[1]) == get_dataset(name).images


def _tamper(folder: Path) -> dict[str, str]:
    """Modify, delete, add and re-encode one file each; returns which file got what."""
    names = sorted(p.name for p in folder.glob("*.png"))
    modified, removed, reencoded = names[0], names[1], names[2]
    with Image.open(folder / modified) as im:
        pixels = np.array(im)
    pixels[0, 0] ^= 1
    Image.fromarray(pixels).save(folder / modified)
    (folder / removed).unlink()
    with Image.open(folder / reencoded) as im:
        im.load()
        im.save(folder / reencoded, compress_level=1)  # other bytes, same pixels
    make_image(folder / "zz_extra.png", 99)
    return {"modified": modified, "removed": removed, "reencoded": reencoded}


def test_verify_detects_changes_in_real_copy(tmp_path: Path) -> None:
    shutil.copytree(real_set("Set5"), tmp_path / "Set5")
    changed = _tamper(tmp_path / "Set5")
    report = verify_dataset("Set5", root=tmp_path)
    assert not report.ok
    assert report.mismatched == [changed["modified"]]
    assert report.missing == [changed["removed"]]
    assert report.extra == ["zz_extra.png"]
    assert report.by_pixels == [changed["reencoded"]]
    assert report.checked == 4
    summary = report.summary()
    assert "FAILED" in summary and "\n" not in summary and changed["removed"] in summary


def test_verify_detects_changes_synthetic(tmp_path: Path) -> None:
    folder = tmp_path / "Toy"
    folder.mkdir()
    for i in range(4):
        make_image(folder / f"im{i}.png", i)
    manifest = build_manifest(folder)
    assert verify_folder("Toy", folder, manifest).ok
    changed = _tamper(folder)
    report = verify_folder("Toy", folder, manifest)
    assert (report.mismatched, report.missing) == ([changed["modified"]], [changed["removed"]])
    assert (report.extra, report.by_pixels) == (["zz_extra.png"], [changed["reencoded"]])


def test_verify_without_manifest_checks_count_and_decoding(tmp_path: Path) -> None:
    folder = tmp_path / "Urban100"
    folder.mkdir()
    for i in range(3):
        make_image(folder / f"img{i:03d}.png", i)
    (folder / "img999.png").write_bytes(b"not a png")
    report = verify_dataset("urban100", root=tmp_path)
    assert not report.ok
    assert not report.manifest
    assert report.checked == 4
    assert report.mismatched == ["img999.png"]
    assert "no manifest is shipped" in report.summary()
    assert "expected 100 images, found 4" in report.summary()


# ----------------------------------------------------------------------------- downloads


def _jpeg_repo(tmp_path: Path) -> tuple[Path, dict[str, dict[str, str]]]:
    """A fake source repository of JPEGs and the manifest of their Pillow-decoded PNGs."""
    repo, reference = tmp_path / "repo", tmp_path / "reference"
    (repo / "imgs").mkdir(parents=True)
    reference.mkdir()
    for i, (stem, mode) in enumerate([("3096", "RGB"), ("8023", "L"), ("101085", "RGB")]):
        jpeg = make_image(repo / "imgs" / f"{stem}.jpg", i, mode=mode)
        with Image.open(jpeg) as im:
            im.save(reference / f"{stem}.png")
    return repo, build_manifest(reference)


def test_download_per_file_converts_jpeg_checked_by_pixels(tmp_path: Path) -> None:
    repo, manifest = _jpeg_repo(tmp_path)
    spec = toy_spec(FileSource(repo.as_uri() + "/", "imgs/{stem}.jpg", "pixels"), 3)
    root = tmp_path / "root"
    dest = install_dataset(spec, root, progress=False, manifest=manifest)
    assert dest == root / "Toy"
    assert leftovers(root) == ["Toy"]
    assert sorted(p.name for p in dest.iterdir()) == [
        "101085.png",
        "3096.png",
        "8023.png",
        "MANIFEST.sha256",
    ]
    for name, entry in manifest.items():
        with Image.open(dest / name) as im:
            assert im.format == "PNG"
            assert pixel_digest(im) == entry["pixels"]
    for line in (dest / "MANIFEST.sha256").read_text().splitlines():
        digest, name = line.split("  ")
        assert hashlib.sha256((dest / name).read_bytes()).hexdigest() == digest
    assert verify_folder("Toy", dest, manifest).ok

    shutil.rmtree(repo)  # an installed set that verifies is not fetched again
    assert install_dataset(spec, root, progress=False, manifest=manifest) == dest


def test_download_per_file_mismatch_leaves_nothing(tmp_path: Path) -> None:
    repo, manifest = _jpeg_repo(tmp_path)
    make_image(repo / "imgs" / "8023.jpg", 42, mode="L")  # the source changed under us
    spec = toy_spec(FileSource(repo.as_uri() + "/", "imgs/{stem}.jpg", "pixels"), 3)
    root = tmp_path / "root"
    with pytest.raises(ChecksumError) as info:
        install_dataset(spec, root, progress=False, manifest=manifest)
    message = str(info.value)
    assert "8023.png" in message and "8023.jpg" in message
    assert manifest["8023.png"]["pixels"] in message
    assert info.value.actual in message and info.value.actual != info.value.expected
    assert leftovers(root) == []


def test_download_per_file_missing_source_leaves_nothing(tmp_path: Path) -> None:
    repo, manifest = _jpeg_repo(tmp_path)
    (repo / "imgs" / "3096.jpg").unlink()
    spec = toy_spec(FileSource(repo.as_uri() + "/", "imgs/{stem}.jpg", "pixels"), 3)
    with pytest.raises(DownloadError, match=r"3096\.jpg"):
        install_dataset(spec, tmp_path / "root", progress=False, manifest=manifest)
    assert leftovers(tmp_path / "root") == []


def test_download_real_set5_from_local_mirror(tmp_path: Path) -> None:
    """The registered Set5 spec, only its URL base moved: reproduces the published listing."""
    spec = get_dataset("Set5")
    assert isinstance(spec.source, FileSource)
    mirror = tmp_path / "mirror"
    shutil.copytree(real_set("Set5"), mirror / "CSet5")
    source = dataclasses.replace(spec.source, base_url=mirror.as_uri() + "/")
    dest = install_dataset(dataclasses.replace(spec, source=source), tmp_path, progress=False)
    listing = (dest / "MANIFEST.sha256").read_bytes()
    assert hashlib.sha256(listing).hexdigest() == PUBLISHED_LISTING_SHA256["Set5"]
    assert verify_dataset("Set5", root=tmp_path).ok


def test_download_real_t91_from_bmp_mirror(tmp_path: Path) -> None:
    """T91 comes as BMPs: decoded, checked against the shipped pixel digests, saved as PNG."""
    spec = get_dataset("T91")
    assert isinstance(spec.source, FileSource)
    mirror = tmp_path / "mirror" / "data" / "yang91"
    mirror.mkdir(parents=True)
    for png in real_set("T91").glob("*.png"):
        with Image.open(png) as im:
            im.save(mirror / f"{png.stem}.bmp")
    base = (tmp_path / "mirror").as_uri() + "/"
    source = dataclasses.replace(spec.source, base_url=base)
    root = tmp_path / "root"
    dest = install_dataset(dataclasses.replace(spec, source=source), root, progress=False)
    report = verify_dataset("T91", root=tmp_path / "root")
    assert report.ok, report.summary()
    assert len(list(dest.glob("*.png"))) == 91


def _write_archive(path: Path, kind: str, members: dict[str, bytes]) -> None:
    if kind == "zip":
        with zipfile.ZipFile(path, "w") as zf:
            for name, data in members.items():
                zf.writestr(name, data)
        return
    with tarfile.open(path, "w") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))


def _image_bytes(seed: int, fmt: str) -> bytes:
    buffer = io.BytesIO()
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (9, 11, 3), dtype=np.uint8)).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_download_archive_over_http(kind: str, http_dir: tuple[Path, str], tmp_path: Path) -> None:
    served, base = http_dir
    png, bmp = _image_bytes(1, "PNG"), _image_bytes(2, "BMP")
    archive = served / f"bench.{kind}"
    _write_archive(
        archive,
        kind,
        {
            "bench/Toy/HR/img001.png": png,
            "bench/Toy/HR/img002.bmp": bmp,
            "bench/Toy/LR/img001.png": _image_bytes(3, "PNG"),
            "bench/readme.txt": b"hello",
        },
    )
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    spec = toy_spec(ArchiveSource(base + archive.name, f"md5:{md5}", "bench/Toy/HR/"), 2)
    root = tmp_path / "root"
    dest = install_dataset(spec, root, progress=False)
    assert leftovers(root) == ["Toy"]
    assert sorted(p.name for p in dest.iterdir()) == ["MANIFEST.sha256", "img001.png", "img002.png"]
    assert (dest / "img001.png").read_bytes() == png  # PNG members are kept byte for byte
    with Image.open(io.BytesIO(bmp)) as im:
        assert pixel_digest(dest / "img002.png") == pixel_digest(im)
    report = verify_folder("Toy", dest, None, 2)
    assert report.ok, report.summary()


def test_download_archive_checksum_mismatch(http_dir: tuple[Path, str], tmp_path: Path) -> None:
    served, base = http_dir
    archive = served / "bench.tar"
    _write_archive(archive, "tar", {"bench/HR/a.png": _image_bytes(1, "PNG")})
    wrong = "0" * 32
    spec = toy_spec(ArchiveSource(base + archive.name, f"md5:{wrong}", "bench/HR/"), 1)
    root = tmp_path / "root"
    with pytest.raises(ChecksumError) as info:
        install_dataset(spec, root, progress=False)
    actual = hashlib.md5(archive.read_bytes()).hexdigest()
    assert "bench.tar" in str(info.value) and wrong in str(info.value) and actual in str(info.value)
    assert leftovers(root) == []


@pytest.mark.parametrize("kind", ["tar", "zip"])
@pytest.mark.parametrize("bad", ["../evil", "bench/HR/../../../evil.png", "/evil"])
def test_unsafe_archive_is_rejected(kind: str, bad: str, tmp_path: Path) -> None:
    served = tmp_path / "served"
    served.mkdir()
    archive = served / f"bad.{kind}"
    _write_archive(archive, kind, {"bench/HR/a.png": _image_bytes(1, "PNG"), bad: b"pwned"})
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    spec = toy_spec(ArchiveSource(archive.as_uri(), f"sha256:{sha}", "bench/HR/"), 1)
    root = tmp_path / "deep" / "root"
    with pytest.raises(UnsafeArchiveError, match="evil"):
        install_dataset(spec, root, progress=False)
    assert leftovers(root) == []
    assert not list(tmp_path.rglob("evil*"))


def test_archive_symlink_to_outside_is_rejected(tmp_path: Path) -> None:
    archive = tmp_path / "links.tar"
    with tarfile.open(archive, "w") as tf:
        link = tarfile.TarInfo("bench/HR/a.png")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(link)
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    spec = toy_spec(ArchiveSource(archive.as_uri(), f"sha256:{sha}", "bench/HR/"), 1)
    with pytest.raises(UnsafeArchiveError, match="not a regular file"):
        install_dataset(spec, tmp_path / "root", progress=False)
    assert leftovers(tmp_path / "root") == []


def test_interrupted_download_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import superres.data.download as download

    repo, manifest = _jpeg_repo(tmp_path)
    spec = toy_spec(FileSource(repo.as_uri() + "/", "imgs/{stem}.jpg", "pixels"), 3)
    real_fetch, calls = download._fetch, []

    def fetch_then_interrupt(*args: object, **kwargs: object) -> str:
        calls.append(args[0])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_fetch(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(download, "_fetch", fetch_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        install_dataset(spec, tmp_path / "root", progress=False, manifest=manifest)
    assert len(calls) == 2
    assert leftovers(tmp_path / "root") == []


def test_existing_folder_is_kept_unless_forced(tmp_path: Path) -> None:
    repo, manifest = _jpeg_repo(tmp_path)
    spec = toy_spec(FileSource(repo.as_uri() + "/", "imgs/{stem}.jpg", "pixels"), 3)
    root = tmp_path / "root"
    (root / "Toy").mkdir(parents=True)
    make_image(root / "Toy" / "junk.png", 5)
    with pytest.raises(FileExistsError, match="does not verify"):
        install_dataset(spec, root, progress=False, manifest=manifest)
    assert (root / "Toy" / "junk.png").exists()
    dest = install_dataset(spec, root, progress=False, manifest=manifest, force=True)
    assert not (dest / "junk.png").exists()
    assert verify_folder("Toy", dest, manifest).ok
    assert leftovers(root) == ["Toy"]


def test_manual_sets_explain_how_to_get_them(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match=r"manga109\.org"):
        download_dataset("Manga109", root=tmp_path, progress=False)
    with pytest.raises(DownloadError, match=r"projects/FSRCNN\.html"):
        download_dataset("general-100", root=tmp_path, progress=False)
    assert leftovers(tmp_path) == []


def test_importing_the_package_is_cheap() -> None:
    code = "import sys, superres.data; print(sorted({'torch', 'PIL', 'tqdm'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
