"""`load_dataset(path)`: recognise which HAM10000 form a path holds, read it once, then serve it from cache.

Recognised forms, in the order they are tried for a folder:
  hmnist    Kaggle folder with hmnist_S_S_RGB.csv / _L.csv and HAM10000_metadata.csv (chosen when the
            requested size has such a CSV: it is the original system's input)
  jpeg      HAM10000 JPEGs anywhere under the folder + HAM10000_metadata.csv, resized at load
  dermamnist  a MedMNIST DermaMNIST .npz (path to the file, or a folder holding exactly one)
  labelled  images + a CSV with columns image_id,dx (the form external test sets come in)
  folders   sub-folders named by class code
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal, get_args

from skinpamper.data import cache
from skinpamper.data.dataset import Dataset
from skinpamper.data.dermamnist import read_dermamnist
from skinpamper.data.hmnist import NAME_PATTERN, read_hmnist
from skinpamper.data.images import (
    Progress,
    has_images,
    index_images,
    read_class_folders,
    read_ham_images,
    read_labelled,
)
from skinpamper.data.metadata import METADATA_NAME, check_commas, find_metadata
from skinpamper.errors import DataError
from skinpamper.imaging import FITS, Fit
from skinpamper.paths import cache_dir

Format = Literal["auto", "hmnist", "jpeg", "dermamnist", "labelled", "folders"]
FORMATS: tuple[str, ...] = get_args(Format)
DEFAULT_SIZE = 28


def _hmnist_csv(folder: Path, size: int | None) -> Path | None:
    """The best hmnist CSV in `folder` for `size`: RGB before grey; any size if none was asked."""
    candidates = sorted((p for p in folder.glob("hmnist_*.csv") if NAME_PATTERN.search(p.name)), reverse=True)
    for colour in ("RGB", "L"):
        for path in candidates:
            side, _, mode = NAME_PATTERN.search(path.name).groups()
            if mode == colour and (size is None or int(side) == size):
                return path
    return None


def _labelled_csv(folder: Path) -> Path | None:
    for path in sorted(folder.glob("*.csv")):
        with path.open(encoding="utf-8-sig", errors="replace") as handle:
            line = handle.readline()
        header = [h.strip().strip('"') for h in line.split(",")]
        if "image_id" in header and "dx" in header and path.name != METADATA_NAME:
            return path
        if "image_id" in line and "dx" in line:
            check_commas(path, line)
    return None


def detect_format(path: Path, size: int | None) -> tuple[str, Path]:
    """(format, main file or folder) for `path`, or a DataError describing the supported layouts."""
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if path.is_file():
        if path.suffix == ".npz":
            return "dermamnist", path
        if path.suffix == ".csv":
            header = path.open(encoding="utf-8", errors="replace").readline()
            return ("labelled" if "image_id" in header and "dx" in header else "hmnist"), path
        raise DataError(f"{path}: unsupported file type; give a folder, an hmnist .csv or a DermaMNIST .npz")
    if find_metadata(path):
        csv = _hmnist_csv(path, size or DEFAULT_SIZE)
        if csv is not None:
            return "hmnist", csv
        if has_images(path):
            return "jpeg", path
        if _hmnist_csv(path, None):
            raise DataError(
                f"{path}: no JPEGs and no hmnist CSV at {size} px; choose the size of an hmnist CSV"
            )
    npz = sorted(path.glob("*.npz"))
    if len(npz) == 1:
        return "dermamnist", npz[0]
    labelled = _labelled_csv(path)
    if labelled is not None:
        return "labelled", labelled
    if any(p.is_dir() for p in path.iterdir()) and not find_metadata(path):
        return "folders", path
    raise DataError(
        f"{path}: not a recognised dataset; expected the Kaggle HAM10000 folder (HAM10000_metadata.csv with "
        "hmnist CSVs or JPEGs), a DermaMNIST .npz, images with an image_id,dx CSV, or class sub-folders"
    )


def _metadata_beside(csv: Path) -> Path:
    meta = find_metadata(csv.parent)
    if meta is None:
        raise DataError(
            f"{csv}: {METADATA_NAME} must sit beside it; the hmnist CSVs have no image or lesion ids, and "
            "without lesion ids a split would put one lesion in both train and test"
        )
    return meta


def _main_for(fmt: str, path: Path, size: int | None) -> Path:
    """The file or folder a forced format reads from `path`."""
    folder = path if path.is_dir() else path.parent
    found = {
        "hmnist": path if path.is_file() else _hmnist_csv(path, size),
        "jpeg": folder if find_metadata(folder) else None,
        "dermamnist": path if path.is_file() else next(iter(sorted(path.glob("*.npz"))), None),
        "labelled": path if path.is_file() else _labelled_csv(path),
        "folders": path if path.is_dir() else None,
    }[fmt]
    if found is None:
        raise DataError(f"{path}: holds no {fmt} dataset{'' if size is None else f' at {size} px'}")
    return found


def _plan(fmt: str, main: Path, size: int | None, fit: Fit, progress: Progress | None):
    """(source files, cache options, reader) for one format."""
    if fmt == "hmnist":
        match = NAME_PATTERN.search(main.name)
        if size is not None and match and int(match.group(1)) != size:
            raise DataError(f"{main}: holds {match.group(1)} px images; --image-size {size} needs the JPEGs")
        metadata = _metadata_beside(main)
        return [main, metadata], {}, lambda: read_hmnist(main, metadata)
    if fmt == "dermamnist":
        return [main], {"size": size}, lambda: read_dermamnist(main, size)
    size = size or DEFAULT_SIZE
    options = {"size": size, "fit": fit}
    if fmt == "jpeg":
        metadata = find_metadata(main)
        files = [metadata, *index_images(main).values()]
        return files, options, lambda: read_ham_images(main, metadata, size, fit, progress)
    if fmt == "labelled":
        files = [main, *index_images(main.parent).values()]
        return files, options, lambda: read_labelled(main, size, fit, progress)
    return list(index_images(main).values()), options, lambda: read_class_folders(main, size, fit, progress)


def load_dataset(
    path: str | Path,
    size: int | None = None,
    fmt: str = "auto",
    fit: Fit = "squash",
    progress: Progress | None = None,
    use_cache: bool = True,
) -> Dataset:
    """Read any supported HAM10000 form into a Dataset; repeated loads come from the cache.

    `size` is the square side in pixels (default: the file's own for hmnist and DermaMNIST, else 28);
    `fit` says how non-square images become square (squash, crop or pad).
    """
    path = Path(path).expanduser()
    if fmt not in FORMATS:
        raise DataError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if fit not in FITS:
        raise DataError(f"unknown fit {fit!r}; choose one of {', '.join(FITS)}")
    if fmt == "auto":
        fmt, main = detect_format(path, size)
    elif not path.exists():
        raise DataError(f"{path}: no such file or folder")
    else:
        main = _main_for(fmt, path, size)
    sources, options, build = _plan(fmt, main, size, fit, progress)
    if not use_cache:
        return build()
    index = cache.DigestIndex(cache_dir() / "digests.json")
    key = cache.cache_key(sources, {"format": fmt, **options}, index)
    target = cache_dir() / f"{fmt}-{key}.npz"
    dataset = cache.load_cached(target) if target.exists() else None
    if dataset is None:
        dataset = build()
        cache.save_dataset(target, dataset)
    elif dataset.source != str(main):
        # The cache is keyed by content, so it may have been filled from another path (a copy, or a
        # relative path from another folder); the source is where this load read from.
        dataset = dataclasses.replace(dataset, source=str(main))
    index.save()
    return dataset
