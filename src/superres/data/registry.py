"""Registry of the standard super-resolution image sets: where they live, how to get and check them.

Every set is a flat folder of HR images, ``<data root>/<Name>/*.png``, or, for sets shipped
together (the face sets), the sub-folder its spec names, e.g. ``Faces/test_helen50/*.jpg``.
A spec also names the channel its literature scores on. The data root is
``$SUPERRES_DATA`` when set, otherwise a per-user cache folder. Sets that have a manifest shipped
in ``superres/data/manifests/<Name>.json`` can be verified file by file. A file passes when its
sha256 matches, or when its decoded pixels match, so that a copy saved by another PNG encoder
still counts as the same set.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import quote

from superres.files import IMAGE_SUFFIXES, cache_folder, file_digest, list_images

if TYPE_CHECKING:
    from PIL import Image

MANIFEST_FILE = "MANIFEST.sha256"
ENV_VAR = "SUPERRES_DATA"
_DIGEST_LENGTHS = {"md5": 32, "sha256": 64}

ManifestEntry = Mapping[str, str]
Manifest = Mapping[str, ManifestEntry]


class DatasetNotFoundError(FileNotFoundError):
    """A set is not on disk; the message says where we looked and how to get it."""


@dataclass(frozen=True)
class FileSource:
    """Fetch a set file by file: one URL per manifest entry, checked against that entry.

    ``url_for(stem)`` is ``base_url + pattern.format(stem=stem)``. The file list comes from the
    shipped manifest. ``verify="sha256"`` keeps the downloaded bytes, which must match the manifest
    sha256 (or, failing that, its pixel digest); ``verify="pixels"`` decodes the file (JPEG, BMP,
    PNG) with Pillow, checks the pixel digest and stores it as PNG.
    """

    base_url: str
    pattern: str
    verify: Literal["sha256", "pixels"]

    def __post_init__(self) -> None:
        if self.verify not in ("sha256", "pixels"):
            raise ValueError(f"verify must be 'sha256' or 'pixels', not {self.verify!r}")
        if "{stem}" not in self.pattern:
            raise ValueError(f"pattern needs a '{{stem}}' field: {self.pattern!r}")

    @classmethod
    def github(
        cls, repo: str, commit: str, pattern: str, verify: Literal["sha256", "pixels"]
    ) -> FileSource:
        """Raw files of ``repo`` (``owner/name``) pinned at ``commit``, so they cannot drift."""
        return cls(f"https://raw.githubusercontent.com/{repo}/{commit}/", pattern, verify)

    def url_for(self, stem: str) -> str:
        return self.base_url + quote(self.pattern.format(stem=stem), safe="/")


@dataclass(frozen=True)
class ArchiveSource:
    """One tar or zip archive; the HR images are the files directly inside ``member_dir``.

    ``checksum`` is ``"md5:<hex>"`` or ``"sha256:<hex>"``: some sets only publish an md5.
    """

    url: str
    checksum: str
    member_dir: str

    def __post_init__(self) -> None:
        algorithm, _, digest = self.checksum.partition(":")
        valid = len(digest) == _DIGEST_LENGTHS.get(algorithm) and all(
            c in "0123456789abcdef" for c in digest
        )
        if not valid:
            raise ValueError(
                f"checksum must be 'md5:<hex>' or 'sha256:<hex>' (lower case), "
                f"not {self.checksum!r}"
            )

    @property
    def algorithm(self) -> str:
        return self.checksum.partition(":")[0]

    @property
    def digest(self) -> str:
        return self.checksum.partition(":")[2]


Source = FileSource | ArchiveSource


@dataclass(frozen=True)
class DatasetSpec:
    """What a set is and how to obtain it; ``source`` is None when it must be fetched by hand."""

    name: str
    aliases: tuple[str, ...]
    role: Literal["eval", "train"]
    images: int
    description: str
    source: Source | None = None
    manual: str = ""
    # Where the set lives under the data root when not in ``<Name>/`` (sets released together).
    folder: str = ""
    # The channel its papers score on; evaluation uses it unless the caller asks for another.
    channel: Literal["y", "rgb"] = "y"
    # A video set: one sub-folder of frames per sequence (`dataset_sequences`), not images.
    video: bool = False

    def __post_init__(self) -> None:
        if self.role not in ("eval", "train"):
            raise ValueError(f"role must be 'eval' or 'train', not {self.role!r}")
        if self.source is None and not self.manual:
            raise ValueError(f"{self.name}: a set without a source needs a manual note")

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)

    @property
    def subfolder(self) -> str:
        """The set's folder relative to the data root."""
        return self.folder or self.name

    def how_to_get(self, root: Path | None = None) -> str:
        """Tell a user exactly how to obtain this set (command, or the page to ask)."""
        folder = (root if root is not None else data_root()) / self.subfolder
        if isinstance(self.source, ArchiveSource):
            where = f"it comes from {self.source.url}"
        elif isinstance(self.source, FileSource):
            where = f"files from {self.source.base_url}"
        else:
            return f"{self.manual} Then put its {self.images} HR images in {folder}."
        return (
            f"Get it with `superres datasets download {self.name}` "
            f"({where}; it is saved as PNGs in {folder})."
        )


_BSDS_PAPER = "the Berkeley Segmentation Dataset, Martin et al., ICCV 2001"

_DENOISING = ("majedelhelou/denoising_datasets", "58234876fef6f1b56306705c78dfd40cdb837b86")
_IDN = ("Zheng222/IDN-Caffe", "482c601336000f5c00b0e93f83a525f0fc917830")
_DCSCN = ("jiny2001/dcscn-super-resolution", "d382bc30d41c94ac72f8cb148d61cc4864b3b380")
_DIV2K_PAPER = (
    "Agustsson and Timofte, 'NTIRE 2017 Challenge on Single Image Super-Resolution: "
    "Dataset and Study', CVPRW 2017"
)
# The FSRNet test faces are only in the authors' repository, without a published checksum.
_FSRNET_MANUAL = (
    "Copy data/{folder}/ of tyshiwo/FSRNet@b5da5e28012d8de0857b444f322213ea1e3a07c6 "
    "(https://github.com/tyshiwo/FSRNet), the JPEG files as they are."
)

_SPECS: tuple[DatasetSpec, ...] = (
    DatasetSpec(
        name="Set5",
        aliases=(),
        role="eval",
        images=5,
        description="5 test images from Bevilacqua et al., 'Low-Complexity Single-Image "
        "Super-Resolution based on Nonnegative Neighbor Embedding', BMVC 2012.",
        source=FileSource.github(*_DENOISING, "CSet5/{stem}.png", "sha256"),
    ),
    DatasetSpec(
        name="Set14",
        aliases=(),
        role="eval",
        images=14,
        description="14 test images from Zeyde et al., 'On Single Image Scale-Up Using "
        "Sparse-Representations', Curves and Surfaces 2010.",
        source=FileSource.github(*_DENOISING, "CSet14/{stem}.png", "sha256"),
    ),
    DatasetSpec(
        name="BSD100",
        aliases=("B100", "BSDS100"),
        role="eval",
        images=100,
        description=f"The 100 BSDS300 test images (JPEG decoded to PNG), from {_BSDS_PAPER}.",
        source=FileSource.github(*_IDN, "test/test_data/B100/{stem}.jpg", "pixels"),
    ),
    DatasetSpec(
        name="Urban100",
        aliases=("U100",),
        role="eval",
        images=100,
        description="100 urban scenes with regular structure, from Huang et al., 'Single Image "
        "Super-Resolution from Transformed Self-Exemplars', CVPR 2015.",
        # The EDSR authors' benchmark archive; only an md5 is published for it.
        source=ArchiveSource(
            url="https://cv.snu.ac.kr/research/EDSR/benchmark.tar",
            checksum="md5:4ace41d33c2384b97e6b320cd0afd6ba",
            member_dir="benchmark/Urban100/HR/",
        ),
    ),
    DatasetSpec(
        name="Manga109",
        aliases=("M109",),
        role="eval",
        images=109,
        description="109 Japanese manga covers, from Matsui et al., 'Sketch-based Manga "
        "Retrieval using Manga109 Dataset', Multimedia Tools and Applications 2017.",
        manual="Manga109 is not redistributable: request it from its owners at "
        "http://www.manga109.org/en/ (free for academic use).",
    ),
    DatasetSpec(
        name="T91",
        aliases=("Yang91", "91-images"),
        role="train",
        images=91,
        description="91 training images (BMP decoded to PNG), from Yang et al., 'Image "
        "Super-Resolution via Sparse Representation', IEEE TIP 2010.",
        source=FileSource.github(*_DCSCN, "data/yang91/{stem}.bmp", "pixels"),
    ),
    DatasetSpec(
        name="General100",
        aliases=("General-100", "G100"),
        role="train",
        images=100,
        description="100 training images from Dong et al., 'Accelerating the Super-Resolution "
        "Convolutional Neural Network' (FSRCNN), ECCV 2016.",
        manual="General100 has no download with a published checksum: get it from the FSRCNN "
        "project page http://mmlab.ie.cuhk.edu.hk/projects/FSRCNN.html.",
    ),
    DatasetSpec(
        name="BSD200",
        aliases=("B200", "BSDS200"),
        role="train",
        images=200,
        description=f"The 200 BSDS300 training images, from {_BSDS_PAPER}; "
        "with T91 it forms the '291' set.",
        source=FileSource.github(*_DCSCN, "data/bsd200/{stem}.png", "pixels"),
    ),
    DatasetSpec(
        name="DIV2K",
        aliases=("DIV2K-train", "DIV2K_train_HR"),
        role="train",
        images=800,
        description=f"The 800 DIV2K 2K-resolution training images, from {_DIV2K_PAPER}.",
        source=ArchiveSource(
            url="http://data.vision.ee.ethz.ch/cvl/DIV2K/DIV2K_train_HR.zip",
            checksum="md5:bdc2d9338d4e574fe81bf7d158758658",
            member_dir="DIV2K_train_HR/",
        ),
    ),
    DatasetSpec(
        name="DIV2K-valid",
        aliases=("DIV2K-val", "DIV2K_valid_HR"),
        role="eval",
        images=100,
        description=f"The 100 DIV2K 2K-resolution validation images, from {_DIV2K_PAPER}.",
        source=ArchiveSource(
            url="http://data.vision.ee.ethz.ch/cvl/DIV2K/DIV2K_valid_HR.zip",
            checksum="md5:9fcdda83005c5e5997799b69f955ff88",
            member_dir="DIV2K_valid_HR/",
        ),
    ),
    DatasetSpec(
        name="FaceHelen50",
        aliases=("Helen50",),
        role="eval",
        images=50,
        description="50 Helen test faces, 128x128 HR JPEGs as released with Chen et al., "
        "'FSRNet: End-to-End Learning Face Super-Resolution with Facial Priors', CVPR 2018 "
        "(JPEG artefacts are part of the ground truth); non-commercial research use.",
        manual=_FSRNET_MANUAL.format(folder="helen_val_50_HR"),
        folder="Faces/test_helen50",
        channel="rgb",
    ),
    DatasetSpec(
        name="FaceCelebA1000",
        aliases=("CelebA1000",),
        role="eval",
        images=1000,
        description="1000 CelebA test faces (ids 201600..202599), 128x128 HR JPEGs as released "
        "with FSRNet (Chen et al., CVPR 2018); non-commercial research use.",
        manual=_FSRNET_MANUAL.format(folder="celeba_val_1000_HR"),
        folder="Faces/test_celeba1000",
        channel="rgb",
    ),
    DatasetSpec(
        name="FaceTrain",
        aliases=(),
        role="train",
        images=1152,
        description="1152 aligned 128x128 face crops (JPEG q95) from the 300-W copies of Helen "
        "train (815) and AFW (337), landmarks in Faces/train_landmarks.csv; no Helen test face; "
        "non-commercial research use.",
        manual="FaceTrain has no download: it was made from Helen train and AFW in "
        "Spinkoo/Face-alignement@e08a16aa91ad771df34e75f70bc5aaf20238ff6a (helen/trainset, "
        "afw/afw) by a similarity alignment on eyes and mouth, described in the data "
        "folder's SOURCES.md.",
        folder="Faces/train",
        channel="rgb",
    ),
    DatasetSpec(
        name="Middlebury2005",
        aliases=("Middlebury",),
        role="eval",
        images=6,
        description="Six Middlebury 2005 stereo scenes (Art, Books, Dolls, Laundry, Moebius, "
        "Reindeer; Scharstein and Pal, CVPR 2007) as released with PMBANet (Ye et al., TIP "
        "2020): 8-bit disparity in test_gt/, RGB guides in test_color/, LR disparity at x2/x4/"
        "x8/x16 in testxS/; research use with citation.",
        manual="Copy color-guided/data/{test_gt,test_color,testx2,testx4,testx8,testx16}/ of "
        "Sunbaoli/PMBANet_DSR@1c473ebb35227c3fa130f07fd874664918f4f8a4 "
        "(https://github.com/Sunbaoli/PMBANet_DSR) into a Middlebury2005/ folder.",
        folder="Middlebury2005/test_gt",
    ),
)

_VIDEO_SETS: tuple[DatasetSpec, ...] = (
    DatasetSpec(
        name="Vid4",
        aliases=(),
        role="eval",
        images=171,
        description="4 test videos (calendar 41, city 34, foliage 49, walk 47 frames), from Liu "
        "and Sun, 'A Bayesian Approach to Adaptive Video Super Resolution', CVPR 2011; "
        "research use.",
        manual="Vid4 has no download with a published checksum: copy the ground-truth frames "
        "inputs/G/<sequence>/ of yhjo09/VSR-DUF@f6b3c92b4fb746e9072953df4876168b1a83e449 "
        "(https://github.com/yhjo09/VSR-DUF) into Vid4/<sequence>/ (frames in name order).",
        video=True,
    ),
)
_SPECS = _SPECS + _VIDEO_SETS

_BY_KEY: dict[str, DatasetSpec] = {n.casefold(): s for s in _SPECS for n in s.names}


def list_datasets() -> list[DatasetSpec]:
    """All registered sets, evaluation sets first, in the order papers usually report them."""
    return sorted(_SPECS, key=lambda s: s.role != "eval")


def get_dataset(name: str) -> DatasetSpec:
    """Look a set up by name or alias, ignoring case, so ``b100`` finds BSD100."""
    try:
        return _BY_KEY[name.strip().casefold()]
    except KeyError:
        known = ", ".join(s.name for s in _SPECS)
        raise KeyError(f"unknown dataset {name!r}; known: {known}") from None


def data_root() -> Path:
    """``$SUPERRES_DATA`` if set, else ``(XDG_CACHE_HOME or ~/.cache)/superres/datasets``."""
    return cache_folder(ENV_VAR, "datasets")


def _root_origin(root: Path | None) -> str:
    if root is not None:
        return "the given root"
    if os.environ.get(ENV_VAR, "").strip():
        return f"${ENV_VAR}"
    return f"the default cache; set ${ENV_VAR} to use another folder"


def _candidate_folders(spec: DatasetSpec, root: Path) -> list[Path]:
    """Folders that may hold ``spec``: its name first, then aliases, matched ignoring case;
    a set with a fixed sub-folder has only that one."""
    if spec.folder:
        return [root / spec.folder] if (root / spec.folder).is_dir() else []
    wanted = [n.casefold() for n in spec.names]
    found: dict[str, list[Path]] = {}
    if root.is_dir():
        for child in root.iterdir():
            if child.is_dir() and child.name.casefold() in wanted:
                found.setdefault(child.name.casefold(), []).append(child)
    ordered = []
    for key, name in zip(wanted, spec.names, strict=True):
        # An exact spelling beats another case of the same name.
        ordered += sorted(found.get(key, []), key=lambda p, n=name: p.name != n)
    return ordered


def find_dataset_folder(name: str, root: Path | None = None) -> tuple[DatasetSpec, Path]:
    """The folder holding a registered set with at least one image, or DatasetNotFoundError."""
    spec = get_dataset(name)
    base = Path(root) if root is not None else data_root()
    for folder in _candidate_folders(spec, base):
        if _sequence_folders(folder) if spec.video else list_images(folder):
            return spec, folder
    looked = ", ".join(str(base / n) for n in ((spec.folder,) if spec.folder else spec.names))
    raise DatasetNotFoundError(
        f"{spec.name} not found: no images in {looked} (data root from {_root_origin(root)}). "
        f"{spec.how_to_get(base)}"
    )


def dataset_images(
    name_or_folder: str | os.PathLike[str], root: Path | None = None
) -> tuple[str, list[Path]]:
    """Images of a registered set (``root/<Name>``) or of any folder, sorted by file name.

    A registered name wins over a folder of the same name in the working directory; pass a
    path such as ``./Set5`` to use that folder instead.
    """
    text = os.fspath(name_or_folder)
    try:
        spec, folder = find_dataset_folder(text, root)
    except KeyError:
        folder = Path(text).expanduser()
        if not folder.is_dir():
            known = ", ".join(s.name for s in _SPECS)
            raise DatasetNotFoundError(
                f"{text!r} is neither a folder nor a registered dataset (known: {known})"
            ) from None
        images = list_images(folder)
        if not images:
            suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
            raise DatasetNotFoundError(f"no images ({suffixes}) in {folder}") from None
        return folder.resolve().name, images
    return spec.name, list_images(folder)


def _sequence_folders(folder: Path) -> list[Path]:
    """The sub-folders of `folder` that hold frames, sorted by name."""
    return sorted(p for p in folder.iterdir()
                  if p.is_dir() and not p.name.startswith(".") and list_images(p))


def is_video_set(name_or_folder: str | os.PathLike[str]) -> bool:
    """Whether evaluation treats it as video: a registered video set, or a folder without
    images of its own whose sub-folders hold frames (one sequence each)."""
    try:
        return get_dataset(os.fspath(name_or_folder)).video
    except KeyError:
        folder = Path(name_or_folder).expanduser()
        return folder.is_dir() and not list_images(folder) and bool(_sequence_folders(folder))


def dataset_sequences(
    name_or_folder: str | os.PathLike[str], root: Path | None = None
) -> tuple[str, dict[str, list[Path]]]:
    """The frames of each sequence of a video set (``root/<Name>/<sequence>/``) or of a
    folder of sequence folders, frames sorted by file name."""
    text = os.fspath(name_or_folder)
    try:
        spec, folder = find_dataset_folder(text, root)
        name = spec.name
        if not spec.video:
            raise ValueError(f"{spec.name} is a set of images, not of video sequences")
    except KeyError:
        folder = Path(text).expanduser()
        name = folder.resolve().name
    sequences = {p.name: list_images(p) for p in _sequence_folders(folder)} \
        if folder.is_dir() else {}
    if not sequences:
        raise DatasetNotFoundError(f"no sequence folders of frames in {folder}")
    return name, sequences


# ----------------------------------------------------------------------------- checksums


def pixel_digest(image: str | os.PathLike[str] | Image.Image) -> str:
    """sha256 of decoded content: mode, size, palette if any, and raw pixel bytes (Pillow).

    Two files with the same digest hold the same image even when their encodings differ.
    Accepts a path or an already opened ``PIL.Image.Image``.
    """
    from PIL import Image

    if isinstance(image, Image.Image):
        return _pixel_digest_of(image)
    with Image.open(image) as im:
        return _pixel_digest_of(im)


def _pixel_digest_of(im: Image.Image) -> str:
    im.load()
    h = hashlib.sha256(f"{im.mode} {im.width}x{im.height}\n".encode())
    if im.mode in ("P", "PA"):
        h.update(bytes(im.getpalette() or []))
    h.update(im.tobytes())
    return h.hexdigest()


def build_manifest(folder: Path) -> dict[str, dict[str, str]]:
    """Manifest entries for every image in ``folder``: name -> {"sha256", "pixels"}."""
    return {
        p.name: {"sha256": file_digest(p), "pixels": pixel_digest(p)}
        for p in list_images(Path(folder))
    }


MANIFEST_DIR = Path(__file__).with_name("manifests")


def write_manifest(name: str, folder: Path, out_dir: Path = MANIFEST_DIR) -> Path:
    """Generate ``<out_dir>/<Name>.json`` from a trusted copy of a set (run once per set)."""
    spec = get_dataset(name)
    files = build_manifest(folder)
    if len(files) != spec.images:
        raise ValueError(
            f"{spec.name}: expected {spec.images} images in {folder}, found {len(files)}"
        )
    listing = sha256sum_text(Path(folder), files)
    doc = {
        "dataset": spec.name,
        "pixels": "sha256 of '<mode> <width>x<height>\\n' + raw pixel bytes, decoded by Pillow",
        # Digest of the `sha256sum *.png` listing, to compare with a published MANIFEST.sha256.
        "sha256sum_digest": hashlib.sha256(listing.encode()).hexdigest(),
        "files": files,
    }
    out = Path(out_dir) / f"{spec.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n")
    return out


def load_manifest(name: str) -> dict[str, dict[str, str]] | None:
    """The shipped manifest of a registered set, or None when none is shipped."""
    spec = get_dataset(name)
    resource = resources.files("superres.data").joinpath("manifests", f"{spec.name}.json")
    if not resource.is_file():
        return None
    return json.loads(resource.read_text())["files"]


def sha256sum_text(folder: Path, names: Iterable[str]) -> str:
    """``sha256sum`` output for ``names`` in ``folder``, sorted by name."""
    return "".join(f"{file_digest(folder / n)}  {n}\n" for n in sorted(names))


# ----------------------------------------------------------------------------- verification


@dataclass
class VerifyReport:
    """Result of checking a set on disk against its manifest (or its image count)."""

    name: str
    ok: bool
    checked: int
    missing: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    by_pixels: list[str] = field(default_factory=list)
    folder: Path | None = None
    manifest: bool = True
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for logs and the CLI."""
        status = "OK" if self.ok else "FAILED"
        parts = [f"{self.name}: {status}, {self.checked} checked"]
        if self.manifest:
            parts.append(f"{self.checked - len(self.mismatched) - len(self.by_pixels)} by sha256")
            parts.append(f"{len(self.by_pixels)} by pixels")
        for label, items in (
            ("missing", self.missing),
            ("mismatched", self.mismatched),
            ("extra", self.extra),
        ):
            if items:
                shown = ", ".join(items[:5]) + (", ..." if len(items) > 5 else "")
                parts.append(f"{len(items)} {label} ({shown})")
        parts += self.notes
        return "; ".join(parts)


def verify_folder(
    name: str, folder: Path, manifest: Manifest | None, expected_images: int | None = None
) -> VerifyReport:
    """Check ``folder`` against ``manifest``; without one, check the count and that all decode."""
    images = {p.name: p for p in list_images(folder)}
    if manifest is None:
        return _verify_without_manifest(name, folder, images, expected_images)
    report = VerifyReport(name, ok=False, checked=0, folder=folder)
    report.missing = sorted(set(manifest) - set(images))
    report.extra = sorted(set(images) - set(manifest))
    for file_name in sorted(set(manifest) & set(images)):
        entry, path = manifest[file_name], images[file_name]
        report.checked += 1
        if file_digest(path) == entry["sha256"]:
            continue
        try:
            same_pixels = pixel_digest(path) == entry["pixels"]
        except (OSError, SyntaxError, ValueError):  # not decodable at all
            same_pixels = False
        (report.by_pixels if same_pixels else report.mismatched).append(file_name)
    report.ok = not (report.missing or report.mismatched or report.extra)
    return report


def _verify_without_manifest(
    name: str, folder: Path, images: dict[str, Path], expected: int | None
) -> VerifyReport:
    from PIL import Image

    report = VerifyReport(name, ok=False, checked=0, folder=folder, manifest=False)
    report.notes.append("no manifest is shipped for this set: checked image count and decoding")
    for file_name, path in sorted(images.items()):
        report.checked += 1
        try:
            with Image.open(path) as im:
                im.load()
        except (OSError, SyntaxError, ValueError):
            report.mismatched.append(file_name)
    count_ok = expected is None or len(images) == expected
    if not count_ok:
        report.notes.append(f"expected {expected} images, found {len(images)}")
    report.ok = count_ok and not report.mismatched
    return report


def verify_dataset(name: str, root: Path | None = None) -> VerifyReport:
    """Check a registered set on disk; raises DatasetNotFoundError when it is absent."""
    spec, folder = find_dataset_folder(name, root)
    if spec.video:  # the frames of every sequence folder, counted and decoded
        frames = {f"{sequence.name}/{path.name}": path
                  for sequence in _sequence_folders(folder) for path in list_images(sequence)}
        return _verify_without_manifest(spec.name, folder, frames, spec.images)
    return verify_folder(spec.name, folder, load_manifest(spec.name), spec.images)
