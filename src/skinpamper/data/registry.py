"""The datasets `skinpamper download` can fetch: where each file lives, its checksum, licence and citation.

Plain frozen data, so importing it does no work; `download.fetch_dataset` does the fetching.
"""

from __future__ import annotations

from dataclasses import dataclass

from skinpamper.errors import DownloadError


@dataclass(frozen=True)
class RemoteFile:
    """One file to fetch. `md5`/`size` None means the source publishes none, so that check is skipped.

    `extract_to` names the folder a zip is unpacked into (the zip itself is then deleted).
    """

    url: str
    filename: str
    md5: str | None
    size: int | None = None
    extract_to: str | None = None


@dataclass(frozen=True)
class DatasetSource:
    """A downloadable dataset: files fetched over HTTP, or a Kaggle archive fetched with kagglehub."""

    name: str
    description: str
    files: tuple[RemoteFile, ...]
    licence: str
    citation: str
    manual: str
    homepage: str
    kaggle_handle: str | None = None
    expected: tuple[str, ...] = ()


_ZENODO = "https://zenodo.org/records/10519652/files"
_DATAVERSE = "https://dataverse.harvard.edu/api/access/datafile"
_HAM_CITATION = (
    "Tschandl P, Rosendahl C, Kittler H. The HAM10000 dataset, a large collection of multi-source "
    "dermatoscopic images of common pigmented skin lesions. Sci Data 5, 180161 (2018). "
    "https://doi.org/10.1038/sdata.2018.161"
)
_MEDMNIST_CITATION = (
    "Yang J, Shi R, Wei D, et al. MedMNIST v2 - A large-scale lightweight benchmark for 2D and 3D "
    "biomedical image classification. Sci Data 10, 41 (2023). https://doi.org/10.1038/s41597-022-01721-8; "
    "and " + _HAM_CITATION
)

# URLs and MD5s are those of medmnist 3.0.2's INFO["dermamnist"] (a test compares them).
_DERMAMNIST_MD5 = {
    "dermamnist": "0744692d530f8e62ec473284d019b0c7",
    "dermamnist_64": "b70a2f5635c6199aeaa28c31d7202e1f",
    "dermamnist_128": "2defd784463fa5243564e855ed717de1",
    "dermamnist_224": "8974907d8e169bef5f5b96bc506ae45d",
}


def _dermamnist(name: str, md5: str) -> DatasetSource:
    px = name.rpartition("_")[2] if "_" in name else "28"
    return DatasetSource(
        name=name,
        description=f"DermaMNIST ({px}x{px} px): HAM10000 resized, official 7007/1003/2005 split, one .npz.",
        files=(RemoteFile(f"{_ZENODO}/{name}.npz?download=1", f"{name}.npz", md5),),
        licence="CC BY-NC 4.0",
        citation=_MEDMNIST_CITATION,
        manual="the file is listed on https://zenodo.org/records/10519652 (MedMNIST+)",
        homepage="https://medmnist.com/",
    )


# Harvard Dataverse doi:10.7910/DVN/DBW86T, version 4.0. File ids, sizes and MD5s as published by
# Dataverse and quoted by several independent projects. The metadata is an "ingested" tabular file: only
# `?format=original` returns the uploaded CSV that the MD5 describes.
_HAM_FILES = (
    RemoteFile(
        f"{_DATAVERSE}/3172585",
        "HAM10000_images_part_1.zip",
        "4639bfa73ab251610530a97c898e6e46",
        1_366_522_108,
        extract_to="HAM10000_images_part_1",
    ),
    RemoteFile(
        f"{_DATAVERSE}/3172584",
        "HAM10000_images_part_2.zip",
        "da43d6cc50f6613013be07e8986b384b",
        1_403_566_547,
        extract_to="HAM10000_images_part_2",
    ),
    RemoteFile(
        f"{_DATAVERSE}/4338392?format=original",
        "HAM10000_metadata.csv",
        "8f85fb1aa29d80a2797247e434deb79d",
        690_218,
    ),
)
_HAM_LAYOUT = ("HAM10000_images_part_1", "HAM10000_images_part_2", "HAM10000_metadata.csv")

DATASETS: dict[str, DatasetSource] = {
    **{name: _dermamnist(name, md5) for name, md5 in _DERMAMNIST_MD5.items()},
    "ham10000": DatasetSource(
        name="ham10000",
        description="HAM10000 from Harvard Dataverse: 10,015 dermoscopy JPEGs and metadata, ~2.8 GB.",
        files=_HAM_FILES,
        licence="CC BY-NC-SA 4.0",
        citation=_HAM_CITATION,
        manual=(
            "the files are listed on https://doi.org/10.7910/DVN/DBW86T; unpacked image folders "
            "HAM10000_images_part_1/ and HAM10000_images_part_2/ are accepted in place of the zips"
        ),
        homepage="https://doi.org/10.7910/DVN/DBW86T",
        expected=_HAM_LAYOUT,
    ),
    "kaggle": DatasetSource(
        name="kaggle",
        description="Kaggle 'Skin Cancer MNIST: HAM10000' archive (images, metadata, hmnist CSVs), ~5.2 GB.",
        files=(),
        licence="CC BY-NC-SA 4.0",
        citation=_HAM_CITATION,
        manual=(
            "download the archive from https://www.kaggle.com/datasets/kmader/skin-cancer-mnist-ham10000 "
            "and unpack it"
        ),
        homepage="https://www.kaggle.com/datasets/kmader/skin-cancer-mnist-ham10000",
        kaggle_handle="kmader/skin-cancer-mnist-ham10000",
        expected=_HAM_LAYOUT,
    ),
}


def get(name: str) -> DatasetSource:
    """The registry entry called `name`; an unknown name is a user error listing the known ones."""
    try:
        return DATASETS[name]
    except KeyError:
        known = ", ".join(sorted(DATASETS))
        raise DownloadError(f"unknown dataset {name!r}; choose one of: {known}") from None
