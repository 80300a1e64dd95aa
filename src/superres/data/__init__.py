"""Standard super-resolution image sets: registry, verification and download.

Cheap to import: Pillow and tqdm are loaded only when images are checked or downloaded.
"""

from superres.data.download import (
    ChecksumError,
    DownloadError,
    UnsafeArchiveError,
    download_dataset,
    install_dataset,
)
from superres.data.registry import (
    ArchiveSource,
    DatasetNotFoundError,
    DatasetSpec,
    FileSource,
    VerifyReport,
    build_manifest,
    data_root,
    dataset_images,
    dataset_sequences,
    get_dataset,
    is_video_set,
    list_datasets,
    load_manifest,
    pixel_digest,
    verify_dataset,
    write_manifest,
)

__all__ = [
    "ArchiveSource",
    "ChecksumError",
    "DatasetNotFoundError",
    "DatasetSpec",
    "DownloadError",
    "FileSource",
    "UnsafeArchiveError",
    "VerifyReport",
    "build_manifest",
    "data_root",
    "dataset_images",
    "dataset_sequences",
    "download_dataset",
    "get_dataset",
    "install_dataset",
    "is_video_set",
    "list_datasets",
    "load_manifest",
    "pixel_digest",
    "verify_dataset",
    "write_manifest",
]
