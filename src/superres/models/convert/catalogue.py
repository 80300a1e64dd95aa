"""The catalogue of the authors' released weights that superres converts (`superres weights
list|download`): where each file is published, its digest and terms, and downloading one
into the user's weights folder with its checksum checked.

superres redistributes none of these files: a download comes from the publisher's own URL
(authors' pages, GitHub at pinned commits where known), and the files stay in the user's
folder. The weights superres ships, trained by superres itself, are the zoo
(`superres.weights.shipped_weights`), listed apart from these.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlparse

from superres.data.download import ChecksumError, DownloadError, fetch_file
from superres.files import file_digest
from superres.models.convert.families import RELEASES
from superres.models.convert.mechanism import ReleasedWeights
from superres.weights import weights_root

# Hosts whose links are pages or share links rather than the file itself.
_NOT_DIRECT = ("drive.google.com", "www.dropbox.com", "dropbox.com")
# The authors' MATLAB releases (superres.models.convert.matlab) carry these terms.
_RESEARCH_TERMS = ("the authors' research-use terms (see their project page); superres does "
                   "not redistribute the file")


@dataclass(frozen=True)
class Entry:
    """One published weights file: its catalogue name, the model and scales it serves, where
    it is, the digest it must have and the terms it comes with."""

    name: str
    model: str
    scales: tuple[int, ...]
    file: str  # the file's published path or name
    url: str
    digest: str | None  # the full sha256, or the torch.hub prefix of it
    layout: str
    licence: str
    note: str

    @property
    def direct(self) -> bool:
        """Whether the URL is the file itself (not a share page, a folder or a zip member)."""
        host = urlparse(self.url).netloc
        return host not in _NOT_DIRECT and "folders" not in self.url and (
            not self.url.split("?")[0].endswith(".zip"))

    @property
    def downloadable(self) -> bool:
        """A download can be checked: a direct URL and a published digest."""
        return self.direct and bool(self.digest)


def _source(url: str) -> str:
    """The repository or site a URL points into: 'owner/name' on GitHub and Hugging Face."""
    parsed = urlparse(url)
    parts = parsed.path.strip("/").split("/")
    if parsed.netloc in ("github.com", "huggingface.co") and len(parts) >= 2:
        return "/".join(parts[:2])
    return parsed.netloc


def _licence(url: str) -> str:
    if url.endswith(".mat") or ".mat?" in url:
        return _RESEARCH_TERMS
    return f"the terms of {_source(url)} (see its licence); superres does not redistribute it"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _entries() -> tuple[Entry, ...]:
    """Every release of every family, one entry per file (a network for several scales is
    one file), named model-xSCALES-layout, then its source and its file where that clashes."""
    grouped: dict[tuple[str, str, str], list[ReleasedWeights]] = {}
    for release in RELEASES:
        grouped.setdefault((release.url, release.file, release.model), []).append(release)
    drafts = []
    for (url, file, model), releases in grouped.items():
        scales = tuple(sorted({r.scale for r in releases}))
        first = releases[0]
        base = f"{model}-x{'-'.join(map(str, scales))}-{_slug(first.layout)}"
        drafts.append((base, Entry("", model, scales, file, url, first.sha256 or
                                   first.sha256_prefix, first.layout,
                                   _licence(url), first.note)))
    names = [base for base, _ in drafts]
    for tag in (lambda e: _source(e.url).split("/")[-1].removeprefix("www.").split(".")[0],
                lambda e: Path(e.file).stem):  # where names clash: the source, else the file
        clashing = {name for name in names if names.count(name) > 1}
        names = [f"{base}-{_slug(tag(entry))}" if name in clashing else name
                 for name, (base, entry) in zip(names, drafts, strict=True)]
    return tuple(replace(entry, name=name) for name, (_, entry) in zip(names, drafts, strict=True))


CATALOGUE: tuple[Entry, ...] = _entries()


def find_entry(name: str) -> Entry:
    """The catalogue entry `name`, or a KeyError listing the names."""
    entry = next((e for e in CATALOGUE if e.name == name.lower()), None)
    if entry is None:
        raise KeyError(f"no released weights named {name!r}; `superres weights list` shows "
                       f"{len(CATALOGUE)} names, e.g. {', '.join(e.name for e in CATALOGUE[:3])}")
    return entry


def download(
    name: str, root: Path | None = None, *, progress: bool = False,
    fetch: Callable[..., str] = fetch_file,
) -> Path:
    """Download a catalogue entry into `root` (default the user's weights folder,
    `$SUPERRES_WEIGHTS`) as released/NAME/FILE and return its path, after checking its sha256
    against the published digest (a mismatch leaves nothing behind). A file already there with
    the right digest is kept. Entries without a digest or a direct URL are refused, saying
    where to get them: superres converts them once they are downloaded by hand."""
    entry = find_entry(name)
    if not entry.downloadable:
        why = "has no published digest to check a download against" if entry.direct else (
            "is not a direct download")
        raise DownloadError(f"{entry.name} {why}: get {entry.file} from {entry.url} yourself; "
                            "`superres convert FILE` or --weights FILE read it")
    folder = (root or weights_root()) / "released" / entry.name
    target = folder / Path(entry.file).name
    if target.is_file() and file_digest(target).startswith(entry.digest or ""):
        return target
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".{target.name}.partial"
    try:
        actual = fetch(entry.url, partial, progress=progress)
        if not actual.startswith(entry.digest or ""):
            raise ChecksumError(entry.file, entry.digest or "", actual)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target
