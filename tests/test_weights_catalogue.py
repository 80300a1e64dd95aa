"""The catalogue of the authors' released weights: every entry names a registered model at a
scale it supports, the official files carry the digests their provenance lists, and
`superres weights download` fetches into the user's weights folder only what has the
published sha256 (tested on local files: nothing is downloaded)."""

import dataclasses
import os
from pathlib import Path

import pytest

from superres.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main
from superres.data.download import ChecksumError, DownloadError
from superres.files import file_digest
from superres.models import get_model
from superres.models.convert import catalogue
from superres.models.convert.catalogue import CATALOGUE, download, find_entry

OFFICIAL = Path(os.environ.get("SUPERRES_WEIGHTS", "/nonexistent")) / "official"


def test_names_are_unique_and_every_entry_is_a_registered_model_at_its_scales():
    assert len({entry.name for entry in CATALOGUE}) == len(CATALOGUE)
    for entry in CATALOGUE:
        spec = get_model(entry.model)
        assert set(entry.scales) <= set(spec.scales), entry.name
        assert entry.url.startswith("https://") and entry.licence
        assert entry.downloadable == (entry.direct and bool(entry.digest))


def test_the_official_matlab_files_carry_their_provenances_digests():
    sums = OFFICIAL / "SHA256SUMS"
    if not sums.is_file():
        pytest.skip("the official weights folder is not in SUPERRES_WEIGHTS")
    listed = {line.split("  ", 1)[1]: line.split()[0] for line in sums.read_text().splitlines()}
    for path, digest in listed.items():
        (entry,) = [e for e in CATALOGUE if e.digest == digest]
        assert Path(entry.file).name == Path(path).name and entry.downloadable, path
        assert "research-use" in entry.licence
    assert {e.model for e in CATALOGUE if e.file.endswith(".mat")} == {
        "srcnn", "srcnn-915", "fsrcnn", "fsrcnn-s", "vdsr", "lapsrn", "ms-lapsrn"}


@pytest.fixture
def local_entry(tmp_path, monkeypatch):
    """The catalogue entry of the EDSR baseline x2 release, its URL pointing to a local file
    (a file:// URL, through the real fetcher) and its digest that file's."""
    entry = find_entry("edsr-baseline-x2-edsr-pytorch")
    source = tmp_path / "published" / "edsr_baseline_x2-1bc95232.pt"
    source.parent.mkdir()
    source.write_bytes(b"the published checkpoint")
    local = dataclasses.replace(entry, url=source.as_uri(), digest=file_digest(source))
    monkeypatch.setattr(catalogue, "CATALOGUE",
                        tuple(local if e.name == entry.name else e for e in CATALOGUE))
    monkeypatch.setenv("SUPERRES_WEIGHTS", str(tmp_path / "weights"))
    return local, source


def test_download_checks_the_digest_into_the_users_weights_folder(local_entry, tmp_path):
    entry, source = local_entry
    path = download(entry.name)
    assert path == tmp_path / "weights" / "released" / entry.name / "edsr_baseline_x2-1bc95232.pt"
    assert path.read_bytes() == source.read_bytes()
    assert download(entry.name) == path  # already there with the right digest: kept


def test_a_download_with_another_digest_leaves_nothing_behind(local_entry, tmp_path):
    entry, source = local_entry
    source.write_bytes(b"a substituted file")
    with pytest.raises(ChecksumError, match="checksum mismatch"):
        download(entry.name)
    assert not any(p.is_file() for p in (tmp_path / "weights").rglob("*"))


def test_a_monkeypatched_fetcher_is_used_and_checked(tmp_path):
    entry = find_entry("srcnn-x3-srcnn")
    calls = []

    def fetch(url: str, out: Path, progress: bool = False) -> str:
        calls.append(url)
        out.write_bytes(b"not the file")
        return file_digest(out)

    with pytest.raises(ChecksumError):
        download(entry.name, tmp_path, fetch=fetch)
    assert calls == [entry.url] and "a95ab414a5b42c4483e034d8b133e893a73b53fb" in entry.url


def test_entries_without_a_digest_or_a_direct_url_say_where_to_get_them(tmp_path):
    with pytest.raises(DownloadError, match="not a direct download"):
        download("edsr-x2-basicsr", tmp_path)
    with pytest.raises(DownloadError, match="no published digest"):
        download("lapsrn-x4-pytorch-lapsrn", tmp_path)
    assert not any(tmp_path.iterdir())


def test_the_weights_command_lists_downloads_and_refuses(local_entry, tmp_path, capsys):
    entry, _ = local_entry
    assert main(["weights", "list"]) == EXIT_OK
    out = capsys.readouterr().out
    assert entry.name in out and "shipped with superres" in out
    assert main(["weights", "download", entry.name, "-q"]) == EXIT_OK
    assert "sha256 checked" in capsys.readouterr().out
    assert main(["weights", "download", "edsr-x2-basicsr"]) == EXIT_FAILED
    assert "not a direct download" in capsys.readouterr().err
    assert main(["weights", "download", "no-such-weights"]) == EXIT_USAGE
