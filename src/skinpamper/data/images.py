"""Readers for image files: HAM10000 JPEGs + metadata, class sub-folders, and labelled folders.

Decoding runs on a thread pool (Pillow releases the GIL while decoding), one image per task, and
reports progress through a callback; the library itself never prints.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from skinpamper.classes import CODES, codes_to_labels
from skinpamper.data.dataset import META_COLUMNS, Dataset, empty_meta
from skinpamper.data.metadata import check_dx, read_csv, read_metadata
from skinpamper.errors import DataError
from skinpamper.imaging import Fit, load_image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
Progress = Callable[[int, int], None]


def _image_files(folder: Path) -> Iterator[Path]:
    return (
        path
        for path in folder.rglob("*")
        if path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".") and path.is_file()
    )


def index_images(folder: Path) -> dict[str, Path]:
    """Every image file under `folder` (recursively) by file stem, e.g. ISIC_0024306."""
    found: dict[str, Path] = {}
    for path in sorted(_image_files(folder)):
        found.setdefault(path.stem, path)
    return found


def has_images(folder: Path) -> bool:
    """Whether any image lies under `folder`; stops at the first, unlike a full index."""
    return next(_image_files(folder), None) is not None


def decode_images(paths: list[Path], size: int, fit: Fit, progress: Progress | None = None) -> np.ndarray:
    """Decode `paths` in parallel into one (N, size, size, 3) uint8 array, in order."""
    out = np.empty((len(paths), size, size, 3), dtype=np.uint8)

    def work(i: int) -> int:
        out[i] = load_image(paths[i], size, fit)
        return i

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        # map() re-raises the first failure (an ImageError naming the file) in order.
        for done, _ in enumerate(pool.map(work, range(len(paths))), start=1):
            if progress is not None:
                progress(done, len(paths))
    return out


def resolve_files(ids: pd.Series, files: dict[str, Path], table: Path, folder: Path) -> list[Path]:
    """The image file for every id, refusing the first id that has none."""
    paths = []
    for row, image_id in enumerate(ids):
        path = files.get(str(image_id))
        if path is None:
            raise DataError(f"{table}: line {row + 2}: image {image_id} has no file under {folder}")
        paths.append(path)
    return paths


def read_ham_images(
    folder: Path, metadata_path: Path, size: int, fit: Fit, progress: Progress | None = None
) -> Dataset:
    """HAM10000 JPEGs anywhere under `folder`, labelled and described by the metadata file."""
    meta = read_metadata(metadata_path)
    paths = resolve_files(meta["image_id"], index_images(folder), metadata_path, folder)
    images = decode_images(paths, size, fit, progress)
    labels = codes_to_labels(meta["dx"].tolist())
    return Dataset(images, labels, meta[list(META_COLUMNS)].copy(), source=str(folder))


def read_class_folders(folder: Path, size: int, fit: Fit, progress: Progress | None = None) -> Dataset:
    """Images in sub-folders named by class code (akiec/, bcc/, ...); other names are refused."""
    subfolders = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    unknown = [p.name for p in subfolders if p.name.lower() not in CODES]
    if unknown:
        raise DataError(
            f"{folder}: sub-folder(s) {unknown} are not class codes; expected folders named "
            f"{', '.join(CODES)}"
        )
    paths, codes = [], []
    for sub in subfolders:
        for path in index_images(sub).values():
            paths.append(path)
            codes.append(sub.name.lower())
    if not paths:
        raise DataError(f"{folder}: no images found in the class sub-folders")
    images = decode_images(paths, size, fit, progress)
    return Dataset(
        images, codes_to_labels(codes), empty_meta(len(paths), [p.stem for p in paths]), str(folder)
    )


def read_labelled(table_path: Path, size: int, fit: Fit, progress: Progress | None = None) -> Dataset:
    """Images next to a CSV with columns image_id,dx (and optionally lesion_id and other metadata)."""
    table = read_csv(table_path, dtype={"image_id": str, "dx": str, "lesion_id": str})
    missing = [c for c in ("image_id", "dx") if c not in table.columns]
    if missing:
        raise DataError(f"{table_path}: missing columns {missing}; a labelled folder's CSV has image_id,dx")
    check_dx(table_path, table["dx"])
    folder = table_path.parent
    paths = resolve_files(table["image_id"], index_images(folder), table_path, folder)
    meta = empty_meta(len(table), table["image_id"].tolist())
    for column in META_COLUMNS[1:]:
        if column in table.columns:
            meta[column] = table[column].to_numpy()
    images = decode_images(paths, size, fit, progress)
    return Dataset(images, codes_to_labels(table["dx"].tolist()), meta, source=str(table_path))
